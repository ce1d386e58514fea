// Choices of how a kernel streams its weights that depend on the microarchitecture rather than on
// its features. Which kernel runs never depends on these (it follows the CPUID features, see
// cpu_features.hpp); only code the same kernel emits does, and every choice has a measured reason
// and an environment override.
#pragma once

#include <string>

namespace sparq::jit {

struct CpuTuning {
  // Whether the decode kernels prefetch the weight stream in software at one token per call
  // (calls of 2-4 tokens always do). Measured with cold weights, one thread:
  //   Intel Xeon (family 6 model 207): int8 16x1 80 % 4096 x 4096 500-550 us without, 310-345
  //     with; int8 2:4 1040-1210 us without, 800-910 with; a dense weight on the 16x1 kernel
  //     0.52x oneDNN's GEMV without, 0.78x with.
  //   AMD Zen 5 (family 26): 22 GB/s without, 25-34 with.
  //   AMD Zen 4 (family 25): the prefetch cost 10-30 % (int8 2:4 4096 x 4096 500 us without,
  //     670-720 with), so family 25 (Zen 3 and Zen 4) leaves one-token calls to the hardware
  //     prefetchers.
  // SPARQ_DECODE_PREFETCH=0|1 overrides.
  bool one_token_decode_prefetch = true;
};

// Read once per process: CPUID's vendor and family, then the environment.
const CpuTuning& cpu_tuning();

// The rule cpu_tuning applies: `vendor` is CPUID leaf 0's string ("GenuineIntel", "AuthenticAMD"),
// `family` the display family (base + extended), `decode_prefetch_env` the value of
// SPARQ_DECODE_PREFETCH or null. Throws InvalidArgument for an override other than 0 or 1.
CpuTuning tuning_for(const std::string& vendor, unsigned family, const char* decode_prefetch_env);

// Whether a decode call of `tokens` tokens prefetches its weight stream in software.
inline bool decode_prefetch(int tokens) {
  return tokens >= 2 || cpu_tuning().one_token_decode_prefetch;
}

}  // namespace sparq::jit
