// CPU features read from CPUID (and XGETBV for the OS-enabled register state), never from the
// vendor string, and the ISA levels sparq's kernels dispatch on.
#pragma once

#include <string>

namespace sparq::jit {

struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false;
  bool avx512_bf16 = false, avx_vnni = false;
  bool avx512_vbmi = false;   // vpermb: optional for the int8 16-token tile (vbmi_features)
  bool avx512_vbmi2 = false;  // vpexpandb: the masked sparse-input decode layout (vbmi2_features)
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;

  // Whether every feature `needed` has is also here.
  bool covers(const CpuFeatures& needed) const;
  // The features present, space-separated in /proc/cpuinfo's spelling ("avx2 fma avx512f ...").
  std::string names() const;
};

// Detected once per process: CPUID, with the register state the OS enabled (XCR0); the AMX
// flags only once Linux granted this process the tile data permission (requested here).
const CpuFeatures& cpu_features();

// Kernel ISA levels, lowest first. Each names the features its kernels need:
//   avx2         AVX2 + FMA
//   avx512       AVX-512 F/BW/VL (the fp32 and bf16 kernels; vdpbf16ps also needs AVX512_BF16,
//                see native_bf16_available in f32_block_kernel.hpp)
//   avx512_vnni  avx512 + AVX512_VNNI (the int8 kernels: vpdpbusd / vpdpwssd)
// A CPU with AVX-512F but no VNNI (Skylake-SP) runs fp32 on avx512 and int8 on avx2.
enum class Isa { reference = 0, avx2 = 1, avx512 = 2, avx512_vnni = 3 };
const char* isa_name(Isa isa);

// The environment variable SPARQ_MAX_ISA=reference|avx2|avx512|avx512_vnni|amx caps every family's
// level (to test fallbacks on a bigger CPU); any level below amx also keeps sparq's own AMX code
// (the int8 16x1 tile layer, the bf16 attention) off.
// The best level the int8 kernels have here (avx512_vnni, avx2 or reference: no int8 kernel
// needs AVX-512 without VNNI).
Isa best_int8_isa();
// The best level the fp32 / bf16 kernels have here (avx512, avx2 or reference).
Isa best_float_isa();
// Whether SPARQ_MAX_ISA lets sparq's AMX code run (unset or amx); the CPU may still lack AMX.
bool amx_allowed();
// Whether this CPU has the features of a level (regardless of SPARQ_MAX_ISA).
bool isa_available(Isa isa);

// The features a level's kernels need (avx512: F/BW/VL with AVX2 and FMA; avx512_vnni adds VNNI).
CpuFeatures features_of(Isa isa);
// What the bf16 kernels need: avx512 plus AVX512_BF16.
CpuFeatures bf16_features();
// avx512_vnni plus AVX512_VBMI (vpermb), which some int8 kernel variants use where it runs.
CpuFeatures vbmi_features();
// avx512_vnni plus AVX512_VBMI2 (vpexpandb), which the masked sparse-input decode kernel needs.
CpuFeatures vbmi2_features();
// Whether generated code needing `needed` can run in this process: on this CPU, or through the
// installed code runner (jit/code_runner.hpp; only test support installs one).
bool can_run(const CpuFeatures& needed);
inline bool can_run(Isa isa) { return can_run(features_of(isa)); }

}  // namespace sparq::jit
