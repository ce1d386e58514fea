// The packed layout of the f32 2:4 tile kernels. Rows in groups of 4 (the last group padded with
// zero rows); for each group and each block of 4 input columns, one 40-byte entry:
//   u8 offset[r][j] for rows 0..3, kept values j = 0, 1: the value's column inside the block
//     times the activation column stride in units of 4 bytes (16 for 16-token slices), so the
//     kernel adds 4 x it (an address scale) to the block's base without decoding;
//   f32 value[r][j] for rows 0..3, j = 0, 1.
// A block row with fewer than 2 non-zeros stores explicit zeros (offset 0). 40 bytes replace the
// 64 bytes of the dense fp32 block: 62.5 % of the dense weight bytes (2 values + 2 one-byte
// positions per row of 4 columns; the 2-bit positions of sparse::NmMatrix are expanded to bytes
// so that the inner loop spends no instructions on unpacking them).
// Activations use the f32 4x1 layout (sparse/f32_block_pack.hpp).
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kF32NmEntryBytes = 40;

struct F32NmWeights {
  int64_t out = 0, in = 0;
  int slice_tokens = 16;
  int64_t blocks_per_group = 0;      // ceil(in / 4)
  std::vector<int64_t> group_begin;  // ceil(out / 4) + 1 entry indices (g * blocks_per_group)
  AlignedVector<uint8_t> entries;    // kF32NmEntryBytes each
  AlignedVector<float> bias;         // per output row, padded to a multiple of 4 with zeros

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// w: fp32 [out x in] with at most 2 non-zeros in every row's group of 4 columns (InvalidArgument
// naming the first violation otherwise); bias: [out] or null.
F32NmWeights pack_f32_2of4(const float* w, const float* bias, int64_t out, int64_t in,
                           int slice_tokens);
std::vector<float> to_dense(const F32NmWeights& w);

}  // namespace sparq::sparse
