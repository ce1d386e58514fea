// The sparsity thresholds with which `auto` chooses kernels, shared by the CPU layers
// (src/sparse_linear.cpp) and the CUDA backend (gpu/backend.cpp), so both judge a weight alike.
#pragma once

#include <cstdint>

namespace sparq {

// Below this fraction of all-zero blocks (4x1 on the CPU, the candidate shape on the GPU), `auto`
// does not pick a block-sparse kernel.
inline constexpr double kMinBlockSparsityForSparse = 0.5;
// Where oneDNN's int8 / bf16 GEMM runs on AMX tiles, `auto` runs the longer calls of a
// block-sparse weight on it below these fractions of all-zero 4x1 blocks: sparq's VNNI and
// vdpbf16ps tile kernels race 8-16x their multiply rate there. Intel Xeon with AMX, one thread,
// 128 tokens, 3072 x 768 / 768 x 3072, two rounds (docs/benchmarks-amx.md): int8 at 75 %
// 0.90-1.07x of oneDNN's AMX GEMM, at 80 % 1.06-1.33x; bf16 at 85 % 0.67-0.83x, at 90 %
// 0.93-1.23x, at 95 % 1.66-2.08x.
inline constexpr double kMinBlockSparsityAgainstAmxInt8 = 0.8;
inline constexpr double kMinBlockSparsityAgainstAmxBf16 = 0.9;
// Where the CPU has AMX-INT8, `auto` runs the longer calls of int8 block-sparse weights on the 16x1
// AMX kernel from this fraction of zero 16x1 blocks on (measured against oneDNN's AMX GEMM, one
// thread, 128 tokens, 16x1-pruned weights: at 50 % 0.85x / 1.33x on 3072 x 768 / 768 x 3072, at
// 70 % 1.10x / 1.89x), and only while the 16x1 blocks holding a non-zero are at most this many
// times the 4x1 ones (the AMX kernel's time grew 0.4-0.55x as fast with the density as the 4x1
// VNNI kernel's: 4x1-pruned weights, where a 16x1 block holds a non-zero ~3.4x as often as a 4x1
// one at 90 %, stay on the VNNI kernel).
inline constexpr double kMinBlockSparsity16x1ForAmxInt8 = 0.7;
inline constexpr double kMax16x1DensityPer4x1DensityForAmx = 2.0;
// The bf16 16x1 AMX kernel's threshold, likewise (against oneDNN's AMX bf16 GEMM: at 70 % 0.95x /
// 1.69x on 3072 x 768 / 768 x 3072, at 80 % 1.63x / 2.16x).
inline constexpr double kMinBlockSparsity16x1ForAmxBf16 = 0.8;
// A 2:4 weight with fewer zeros than this (e.g. a dense one with a few zeros that happens to fit
// 2:4) runs dense under `auto`.
inline constexpr double kMinSparsityFor2of4 = 0.45;
// Calls of at most this many tokens are decode steps, which run a layer's decode kernel where it
// has one (every decode kernel takes 1..4 tokens). Under auto, f32/bf16 layers whose 4x1 block
// sparsity is below kMinBlockSparsityForF32Decode (and have no decode kernel) run them dense.
inline constexpr int64_t kDecodeTokens = 4;
inline constexpr double kMinBlockSparsityForF32Decode = 0.75;
// Dense int8 layers of at most this many weights, run on more than one thread, take their decode
// steps on sparq's 16x1 decode kernel rather than oneDNN's GEMV: such a call is too short for
// oneDNN's OpenMP threads to pay their wake-up (Zen 4, 2 threads, cold weights: 576 x 576 to
// 1536 x 576 at 1.8-4x oneDNN, 2048 x 2048 at 1.08x; on one thread both run alike, 0.94-1.08x;
// larger weights 0.87-0.96x).
inline constexpr int64_t kMaxWeightsForOwnDenseInt8Decode = int64_t{4} << 20;
// Layers with an input threshold run the sparse-input decode kernel only when they expect at
// least this fraction of zero inputs (LinearOptions::expected_input_sparsity). Zen 4, 2 threads,
// cold weights (docs/benchmarks-avx512.md): at 50 % zero inputs the kernel ran 0.69-1.06x oneDNN
// on dense weights and 0.81-0.99x on 2:4 (where the 2:4 decode kernel runs 1.07-1.33x), at 75 %
// 1.22-1.96x and 1.53-1.71x.
inline constexpr double kMinInputSparsityForSkipping = 0.7;
// Layers whose weight the sparse-input kernels store in long chunks (bf16: 1024 rows or more, any
// weight; int8: 2048 rows or more, dense weights) run them from these expected fractions of zero
// inputs. Zen 4, cold weights, 2 threads (docs/benchmarks-avx512.md): at 50 % zero inputs bf16
// 1.30-1.57x oneDNN's bf16 GEMV on dense weights, 1.41-1.57x on 2:4 ones; int8 dense weights
// 1.37-1.61x oneDNN's int8 GEMV. int8 dense weights at 30 % (llama-1b's shapes and 4096 x 4096,
// two runs): 1.04-1.40x, at 40 % 1.08-1.58x (since the grouped long-chunk loop 1.25-1.61x and
// 1.20-1.90x, and at 0 % 0.91-1.19x); bf16 at 40 % lost on 2560 x 2048 (0.93-1.03x: a
// 2048-row chunk and a 512-row one), so bf16 keeps 50 %.
inline constexpr double kMinInputSparsityForInt8LongChunks = 0.3;
inline constexpr double kMinInputSparsityForBf16LongChunks = 0.5;
// bf16 weights of 1024 rows or more that the layer stores in the masked form (2:4, 16x1 blocks,
// any weight whose non-zeros and masks take at most 90 % of the dense bytes), against the 2:4
// decode kernel on every input. Zen 4, cold, 2 threads, three rounds (docs/benchmarks-avx512.md),
// medians of the ratios to oneDNN's bf16 GEMV, 2:4 weights: at 40 % zero inputs 2.20x / 2.10x /
// 2.00x / 2.03x on 4096 x 4096 / 5632 x 2048 / 2048 x 5632 / 2048 x 2048 against the 2:4 kernel's
// 2.00x / 1.73x / 1.60x / 1.88x; at 30 % about even (2048 x 2048 1.42x against 2.04x).
inline constexpr double kMinInputSparsityForBf16MaskedLongChunks = 0.4;
// int8 2:4 weights of 2048 rows or more, stored in the masked form (zero weights cost only their
// mask bit), against the 2:4 decode kernel on every input. Zen 4, cold, 2 threads, two rounds
// (docs/benchmarks-avx512.md), ratios to oneDNN's int8 GEMV: at 50 % zero inputs 2.11-2.32x /
// 1.70-2.39x on 4096 x 4096 / 11008 x 4096 against the 2:4 kernel's 1.64-1.81x / 1.56-1.75x, and
// about even on llama-1b's shapes (5632 x 2048 1.71-2.14x against 1.98-1.99x, 2048 x 5632
// 1.37-2.08x against 1.79-1.97x, 2048 x 2048 1.96-2.18x against 2.13-2.26x); at 40 % behind on
// those (llama-1b 2:4 tg128 at 40 %: 44.50 / 47.25 tokens/s against 44.13 / 65.95 without).
inline constexpr double kMinInputSparsityForInt8Masked2of4LongChunks = 0.5;
// The same on CPUs whose tuning says so (CpuTuning::sparse_input_2of4_from_40_percent: Intel).
// Intel Xeon with AMX, cold, 2 threads, at 40 % zero inputs: the sparse-input kernel 242 / 283 /
// 112 / 370 us on 5632 x 2048 / 2048 x 5632 / 2048 x 2048 / 4096 x 4096 against the 2:4 kernel's
// 325 / 338 / 125 / 493; llama-1b 2:4 tg64 at 40 % 36.2-36.8 tokens/s against 29.6-32.0 without.
inline constexpr double kMinInputSparsityForInt8Masked2of4LongChunksIntel = 0.4;

}  // namespace sparq
