// The packed layout of the int8 16x1 block-sparse AMX kernel (src/int8_amx_linear.hpp).
//
// Weights: output rows in blocks of 16 (the last one zero-padded). For each block, the input
// columns where any of its 16 rows holds a non-zero, in ascending order, cut into groups of 64
// (the last group padded with zero weights on the block's first column). A group is one AMX A
// tile, [16 rows][64 columns] s8 (1 KiB, the weight the tile product multiplies as signed), and
// the 64 columns' byte offsets in a 64-token chunk of the quads_u8 activation layout
// (sparse/int8_block_pack.hpp), from which the kernel gathers the B tiles of each chunk (only
// the quads that hold real columns: the padding's zero weights null whatever the rest holds).
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kAmxBlockRows = 16;
inline constexpr int kAmxGroupColumns = 64;
inline constexpr int kAmxTileBytes = kAmxBlockRows * kAmxGroupColumns;

struct Int8Amx16x1Weights {
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;     // blocks() + 1 group indices
  AlignedVector<int8_t> tiles;          // kAmxTileBytes per group
  AlignedVector<uint32_t> offsets;      // kAmxGroupColumns per group: column * 64
  std::vector<uint8_t> quads;           // per group: its quads (4 columns) holding real columns
  AlignedVector<float> scales;          // per output row, padded to blocks() * 16 with zeros
  AlignedVector<float> bias;            // likewise; zeros when the layer has no bias
  AlignedVector<int32_t> compensation;  // 128 * sum_i w[r][i] (u8 activations are q + 128)
  int64_t nonzero_columns = 0;          // sum over blocks of their columns, before padding

  int64_t blocks() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t groups() const { return group_begin.empty() ? 0 : group_begin.back(); }
  int64_t bytes() const;
};

// wq: s8 [out x in], w_scale: [out], bias: [out] or null.
Int8Amx16x1Weights pack_int8_16x1_amx(const int8_t* wq, const float* w_scale, const float* bias,
                                      int64_t out, int64_t in);
// The s8 [out x in] weight the packed form holds (for round-trip tests).
std::vector<int8_t> to_dense(const Int8Amx16x1Weights& w);

}  // namespace sparq::sparse
