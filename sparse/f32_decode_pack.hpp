// The packed layout of the f32/bf16 decode kernels (1..4 tokens, memory-bound): output rows in
// the vector lanes, the weight's zeros skipped in 16x1 blocks (as the int8 decode layout).
//
// Weights: output rows in groups of 16 (the last group zero-padded). For each group, one entry per
// input column where its 16x1 block holds a non-zero: u32 column, then the 16 values w[r][c] as
// fp32 (68 bytes, 1.06x the block's dense fp32 bytes) or bf16 (36 bytes, 0.56x).
// Activations: fp32 [tokens][in] as given (bf16 layers round them first).
//
// 2:4 weights (two_of_four, the AVX-512 decode kernel): for each group, one entry per block of 4
// input columns (every block, in order): the kept values j = 0, 1 of the 16 rows as fp32
// ([2][16], 128 bytes) or bf16 ([2][16], 64 bytes), then one byte per row: a0 | a1 << 2, the
// columns inside the block of its kept values (a row keeping fewer stores zeros). 144 bytes per
// 16 x 4 block where dense fp32 spends 256 (bf16: 80 for 128). Activations padded to a multiple
// of 4 columns.
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kF32DecodeRows = 16;

struct F32DecodeWeights {
  bool bf16 = false;  // values stored as bf16 (the weight must hold bf16 values)
  bool two_of_four = false;
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;  // ceil(out / 16) + 1 entry indices
  AlignedVector<uint8_t> entries;    // entry_bytes() each
  AlignedVector<float> bias;         // per output row, padded to a multiple of 16 with zeros
  int64_t nonzero_blocks = 0;        // entries: 16x1 blocks holding a non-zero; 2:4: 16 x 4 blocks

  int entry_bytes() const {
    if (two_of_four) return bf16 ? 2 * 32 + 16 : 2 * 64 + 16;
    return bf16 ? 4 + 32 : 4 + 64;
  }
  // Columns of the activations the kernel reads (2:4: padded to whole blocks of 4).
  int64_t padded_in() const { return two_of_four ? ceil_div4(in) * 4 : in; }
  static int64_t ceil_div4(int64_t n) { return (n + 3) / 4; }
  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// w: fp32 [out x in]; bias [out] or null. bf16: store the values as bf16 (rounded to nearest even;
// exact when w already holds bf16 values).
F32DecodeWeights pack_f32_decode(const float* w, const float* bias, int64_t out, int64_t in,
                                 bool bf16);
// The 2:4 layout: w must hold at most 2 non-zeros in every row's group of 4 columns
// (InvalidArgument naming the first violation otherwise).
F32DecodeWeights pack_f32_2of4_decode(const float* w, const float* bias, int64_t out, int64_t in,
                                      bool bf16);
std::vector<float> to_dense(const F32DecodeWeights& w);

}  // namespace sparq::sparse
