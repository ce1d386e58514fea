// The packed layout of the f32/bf16 decode kernels (1..4 tokens, memory-bound): output rows in
// the vector lanes, the weight's zeros skipped in 16x1 blocks (as the int8 decode layout).
//
// Weights: output rows in groups of 16 (the last group zero-padded). For each group, one entry per
// input column where its 16x1 block holds a non-zero: u32 column, then the 16 values w[r][c] as
// fp32 (68 bytes, 1.06x the block's dense fp32 bytes) or bf16 (36 bytes, 0.56x).
// Activations: fp32 [tokens][in] as given (bf16 layers round them first).
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kF32DecodeRows = 16;

struct F32DecodeWeights {
  bool bf16 = false;  // values stored as bf16 (the weight must hold bf16 values)
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;  // ceil(out / 16) + 1 entry indices
  AlignedVector<uint8_t> entries;    // entry_bytes() each
  AlignedVector<float> bias;         // per output row, padded to a multiple of 16 with zeros
  int64_t nonzero_blocks = 0;

  int entry_bytes() const { return bf16 ? 4 + 32 : 4 + 64; }
  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// w: fp32 [out x in]; bias [out] or null. bf16: store the values as bf16 (rounded to nearest even;
// exact when w already holds bf16 values).
F32DecodeWeights pack_f32_decode(const float* w, const float* bias, int64_t out, int64_t in,
                                 bool bf16);
std::vector<float> to_dense(const F32DecodeWeights& w);

}  // namespace sparq::sparse
