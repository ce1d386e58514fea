#include "jit/cpu_tuning.hpp"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "sparq/error.hpp"

namespace sparq::jit {
namespace {

CpuTuning detect() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  std::string vendor;
  unsigned family = 0;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    char name[13] = {};
    std::memcpy(name, &b, 4);
    std::memcpy(name + 4, &d, 4);
    std::memcpy(name + 8, &c, 4);
    vendor = name;
  }
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const unsigned base = (a >> 8) & 0xf;
    family = base == 0xf ? base + ((a >> 20) & 0xff) : base;
  }
  return tuning_for(vendor, family, std::getenv("SPARQ_DECODE_PREFETCH"),
                    std::getenv("SPARQ_BF16_TILES"));
}

}  // namespace

CpuTuning tuning_for(const std::string& vendor, unsigned family, const char* decode_prefetch_env,
                     const char* bf16_tiles_env) {
  CpuTuning t;
  // AMD family 25 (0x19) is Zen 3 and Zen 4.
  t.one_token_decode_prefetch = !(vendor == "AuthenticAMD" && family == 0x19);
  if (decode_prefetch_env != nullptr && *decode_prefetch_env != 0) {
    const std::string s = decode_prefetch_env;
    if (s != "0" && s != "1")
      throw InvalidArgument("SPARQ_DECODE_PREFETCH='" + s + "': expected 0 or 1");
    t.one_token_decode_prefetch = s == "1";
  }
  t.sparse_input_2of4_from_40_percent = vendor == "GenuineIntel";
  t.bf16_attention_products = vendor != "GenuineIntel";
  if (bf16_tiles_env != nullptr && *bf16_tiles_env != 0) {
    const std::string s = bf16_tiles_env;
    if (s != "vdpbf16ps" && s != "fp32")
      throw InvalidArgument("SPARQ_BF16_TILES='" + s + "': expected vdpbf16ps or fp32");
    t.bf16_tiles_on_vdpbf16ps = s == "vdpbf16ps";
  }
  return t;
}

const CpuTuning& cpu_tuning() {
  static const CpuTuning tuning = detect();
  return tuning;
}

}  // namespace sparq::jit
