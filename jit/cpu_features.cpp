#include "jit/cpu_features.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include "jit/code_runner.hpp"
#include "sparq/error.hpp"

namespace sparq::jit {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t{edx} << 32) | eax;
}

// Linux enables AMX tile data per process, on request (arch_prctl ARCH_REQ_XCOMP_PERM for
// XFEATURE_XTILEDATA); without it the first tile instruction faults although CPUID and XCR0 say
// AMX is there.
bool request_amx_permission() {
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12);
  if (!osxsave) return f;
  const uint64_t xcr0 = xgetbv0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm_state && (b & (1u << 5));
  f.fma = ymm_state && fma;
  f.avx512f = zmm_state && (b & (1u << 16));
  f.avx512bw = zmm_state && (b & (1u << 30));
  f.avx512vl = zmm_state && (b & (1u << 31));
  f.avx512_vnni = zmm_state && (c & (1u << 11));
  f.avx512_vbmi = zmm_state && (c & (1u << 1));
  f.avx512_vbmi2 = zmm_state && (c & (1u << 6));
  f.amx_bf16 = tile_state && (d & (1u << 22));
  f.amx_tile = tile_state && (d & (1u << 24));
  f.amx_int8 = tile_state && (d & (1u << 25));
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avx_vnni = ymm_state && (a & (1u << 4));
    f.avx512_bf16 = zmm_state && (a & (1u << 5));
  }
  if (f.amx_tile && !request_amx_permission()) f.amx_tile = f.amx_int8 = f.amx_bf16 = false;
  return f;
}

bool has(const CpuFeatures& f, Isa isa) { return f.covers(features_of(isa)); }

Isa read_cap() {
  Isa isa = Isa::avx512_vnni;
  if (const char* cap = std::getenv("SPARQ_MAX_ISA"); cap && *cap) {
    const std::string s = cap;
    Isa limit;
    if (s == "reference")
      limit = Isa::reference;
    else if (s == "avx2")
      limit = Isa::avx2;
    else if (s == "avx512")
      limit = Isa::avx512;
    else if (s == "avx512_vnni" || s == "amx")
      limit = Isa::avx512_vnni;
    else
      throw InvalidArgument("SPARQ_MAX_ISA='" + s +
                            "': expected reference, avx2, avx512, avx512_vnni or amx");
    if (limit < isa) isa = limit;
  }
  return isa;
}

Isa isa_cap() {
  static const Isa cap = read_cap();
  return cap;
}

bool read_amx_cap() {
  const char* cap = std::getenv("SPARQ_MAX_ISA");
  return cap == nullptr || *cap == 0 || std::string(cap) == "amx";
}

// The highest of `levels` (highest first) this CPU has, capped by SPARQ_MAX_ISA.
template <size_t N>
Isa best_of(const Isa (&levels)[N]) {
  const Isa cap = isa_cap();
  for (Isa isa : levels)
    if (isa <= cap && has(cpu_features(), isa)) return isa;
  return Isa::reference;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::reference:
      return "reference";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::avx512_vnni:
      return "avx512_vnni";
  }
  return "unknown";
}

Isa best_int8_isa() {
  static const Isa isa = best_of({Isa::avx512_vnni, Isa::avx2});
  return isa;
}

Isa best_float_isa() {
  static const Isa isa = best_of({Isa::avx512, Isa::avx2});
  return isa;
}

bool isa_available(Isa isa) { return has(cpu_features(), isa); }

// Every feature with its /proc/cpuinfo name: what covers() compares and names() lists.
constexpr std::pair<const char*, bool CpuFeatures::*> kFeatureFields[] = {
    {"avx2", &CpuFeatures::avx2},
    {"fma", &CpuFeatures::fma},
    {"avx512f", &CpuFeatures::avx512f},
    {"avx512bw", &CpuFeatures::avx512bw},
    {"avx512vl", &CpuFeatures::avx512vl},
    {"avx512_vnni", &CpuFeatures::avx512_vnni},
    {"avx512_bf16", &CpuFeatures::avx512_bf16},
    {"avx512vbmi", &CpuFeatures::avx512_vbmi},
    {"avx512_vbmi2", &CpuFeatures::avx512_vbmi2},
    {"avx_vnni", &CpuFeatures::avx_vnni},
    {"amx_tile", &CpuFeatures::amx_tile},
    {"amx_int8", &CpuFeatures::amx_int8},
    {"amx_bf16", &CpuFeatures::amx_bf16}};

bool CpuFeatures::covers(const CpuFeatures& needed) const {
  for (const auto& [name, field] : kFeatureFields)
    if (needed.*field && !(this->*field)) return false;
  return true;
}

std::string CpuFeatures::names() const {
  std::string s;
  for (const auto& [name, field] : kFeatureFields) {
    if (!(this->*field)) continue;
    if (!s.empty()) s += ' ';
    s += name;
  }
  return s;
}

CpuFeatures features_of(Isa isa) {
  CpuFeatures f;
  if (isa == Isa::reference) return f;
  f.avx2 = f.fma = true;
  if (isa == Isa::avx2) return f;
  f.avx512f = f.avx512bw = f.avx512vl = true;
  if (isa == Isa::avx512) return f;
  f.avx512_vnni = true;
  return f;
}

CpuFeatures bf16_features() {
  CpuFeatures f = features_of(Isa::avx512);
  f.avx512_bf16 = true;
  return f;
}

CpuFeatures vbmi_features() {
  CpuFeatures f = features_of(Isa::avx512_vnni);
  f.avx512_vbmi = true;
  return f;
}

CpuFeatures vbmi2_features() {
  CpuFeatures f = features_of(Isa::avx512_vnni);
  f.avx512_vbmi2 = true;
  return f;
}

bool amx_allowed() {
  static const bool allowed = (isa_cap(), read_amx_cap());  // isa_cap() rejects a bad value first
  return allowed;
}

bool can_run(const CpuFeatures& needed) {
  if (cpu_features().covers(needed)) return true;
  const CodeRunner* runner = code_runner();
  return runner && runner->features.covers(needed);
}

}  // namespace sparq::jit
