// Choices that depend on the microarchitecture rather than on the CPUID features: how a kernel
// streams its weights, and which of two kernels that compute the same thing runs where the
// features allow both. Whether a kernel can run at all follows the features (cpu_features.hpp);
// every choice here has a measured reason and an override (an environment variable, or the
// layer options that already steer it).
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
  // Whether bf16 4x1 tile layers run the vdpbf16ps kernel (bf16 weights, jit:bf16-4x1) where the
  // CPU has AVX512_BF16, or the fp32 kernel on bf16-rounded weights and activations
  // (jit:f32-4x1, twice the weight bytes; the same products, summed in fp32). Intel Xeons issue
  // vdpbf16ps at a quarter of vfmadd231ps' rate (a throughput loop: 1.87 against 7.46 per ns on
  // one with AMX, 1.1-1.3 against 4.2-5.4 on family 6 model 207), and there the fp32 kernel runs
  // 90 % 4x1 layers of 768 inputs 1.3-1.5x faster, but those of 3072 inputs 0.94x on two threads,
  // and BERT-base bf16 90 % at 0.97x (docs/benchmarks-amx.md): vdpbf16ps everywhere by default.
  // SPARQ_BF16_TILES=vdpbf16ps|fp32 overrides.
  bool bf16_tiles_on_vdpbf16ps = true;
  // Whether int8 2:4 layers of 2048 rows or more take the sparse-input decode kernel from 40 %
  // expected zero inputs (else from 50 %): yes on Intel, where it beat the 2:4 decode kernel at
  // 40 % on llama-1b's shapes (1.11-1.34x) and llama-1b 2:4 decoded 1.13-1.24x faster; not on AMD
  // Zen 4, where it lost there (src/kernel_thresholds.hpp). No override: a layer's
  // LinearOptions::expected_input_sparsity already steers the choice.
  bool sparse_input_2of4_from_40_percent = false;
  // Whether an int8 or bf16 encoder's attention products (q k^T and p v) run in bf16 on
  // vdpbf16ps (EncoderOptions::attention automatic) where the CPU has AVX512_BF16: not on Intel,
  // whose vdpbf16ps runs at a quarter of the FMA rate (above). On the Xeon with AMX the bf16
  // attention took 558 us a layer against 406 in fp32 (sparq-gbench, seq 128), and BERT-base 90 %
  // 4x1 int8 ran 2-3.5 % faster on fp32 products at one thread, 6 % at two, 10 % at seq 384; on
  // AMD Zen 4 the bf16 products made the same model 1.06x faster. (Where the CPU has AMX-BF16,
  // bf16 attention runs on AMX tiles instead and automatic takes it: models/attention.hpp.)
  // EncoderOptions::attention f32 or bf16 overrides.
  bool bf16_attention_products = true;
};

// Read once per process: CPUID's vendor and family, then the environment.
const CpuTuning& cpu_tuning();

// The rule cpu_tuning applies: `vendor` is CPUID leaf 0's string ("GenuineIntel", "AuthenticAMD"),
// `family` the display family (base + extended), `decode_prefetch_env` and `bf16_tiles_env` the
// values of SPARQ_DECODE_PREFETCH and SPARQ_BF16_TILES, or null. Throws InvalidArgument for an
// override other than 0 / 1, vdpbf16ps / fp32.
CpuTuning tuning_for(const std::string& vendor, unsigned family, const char* decode_prefetch_env,
                     const char* bf16_tiles_env = nullptr);

// Whether a decode call of `tokens` tokens prefetches its weight stream in software.
inline bool decode_prefetch(int tokens) {
  return tokens >= 2 || cpu_tuning().one_token_decode_prefetch;
}

}  // namespace sparq::jit
