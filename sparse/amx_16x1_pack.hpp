// The packed layouts of the 16x1 block-sparse AMX kernels (src/amx_16x1_linear.hpp), int8 and bf16.
//
// Weights: output rows in blocks of 16 (the last one zero-padded). For each block, the input
// columns where any of its 16 rows holds a non-zero, in ascending order, cut into groups of 64
// (int8) or 32 (bf16) columns, the last group padded with zero weights on the block's first
// column. A group is one AMX A tile, [16 rows][64 bytes] (s8 weights, which the tile product
// multiplies as signed, or bf16 ones; 1 KiB), and its columns' byte offsets in a 64-token chunk
// of the activations: the quads_u8 layout of the int8 kernels (sparse/int8_block_pack.hpp, 64
// bytes a column) or the bf16 slices of the bf16 ones (sparse/bf16_block_pack.hpp, 128 bytes a
// column). Per chunk the kernels gather a group's B tiles from there: only the quads (int8) or
// pairs (bf16) of columns that hold real columns; the padding's zero weights null whatever the
// rest of the tile holds.
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kAmxBlockRows = 16;
inline constexpr int kAmxTileBytes = 1024;

struct Amx16x1Weights {
  int64_t out = 0, in = 0;
  int group_columns = 0;                // 64 (int8) or 32 (bf16)
  std::vector<int64_t> group_begin;     // blocks() + 1 group indices
  AlignedVector<uint8_t> tiles;         // kAmxTileBytes per group
  AlignedVector<uint32_t> offsets;      // group_columns per group: the columns' byte offsets
  std::vector<uint8_t> steps;           // per group: its B tile rows that hold real columns
  AlignedVector<float> bias;            // per output row, padded to blocks() * 16 with zeros
  AlignedVector<float> scales;          // int8: per output row, padded likewise
  AlignedVector<int32_t> compensation;  // int8: 128 * sum_i w[r][i] (u8 activations are q + 128)
  int64_t nonzero_columns = 0;          // sum over blocks of their columns, before padding

  int64_t blocks() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t groups() const { return group_begin.empty() ? 0 : group_begin.back(); }
  int64_t bytes() const;
};

// wq: s8 [out x in], w_scale: [out], bias: [out] or null.
Amx16x1Weights pack_int8_16x1_amx(const int8_t* wq, const float* w_scale, const float* bias,
                                  int64_t out, int64_t in);
// w: fp32 [out x in] whose zeros are the pruned entries (rounded to bf16 here); bias: [out] or
// null.
Amx16x1Weights pack_bf16_16x1_amx(const float* w, const float* bias, int64_t out, int64_t in);

// The weight the packed form holds (for round-trip tests): s8, or bf16 values as fp32.
std::vector<int8_t> to_dense_int8(const Amx16x1Weights& w);
std::vector<float> to_dense_bf16(const Amx16x1Weights& w);

}  // namespace sparq::sparse
