// The packed layout of the AVX-512 VNNI int8 2:4 decode kernel (1..4 tokens, memory-bound): the
// output rows are the vector lanes, as in the 16x1 decode layout, and each dword lane holds one
// row's four kept values of a window of 8 input columns (two 2:4 blocks).
//
// Weights: output rows in groups of 16 (the last group zero-padded); per group and window of 8
// columns (windows past `in` zero) one 80-byte entry:
//   64 bytes: for rows r = 0..15, s8 w[r][a0], w[r][a1], w[r][4 + b0], w[r][4 + b1], where a0 < a1
//             are the kept columns of the first block and b0 < b1 of the second;
//   16 bytes: byte r = a0 | a1 << 2 | b0 << 4 | b1 << 6.
// 80 bytes per 16 x 8 weights where dense int8 spends 128 (62.5 %). A block with fewer than two
// non-zeros keeps zeros (at unused positions).
// Activations: u8 = q + 128, [tokens][windows * 8], zero-padded (q = -128 is never produced, so
// the padding's 128 * 0-weight products vanish); the kernel subtracts compensation[r] =
// 128 * sum_c w[r][c].
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kNmDecodeRows = 16;
inline constexpr int kNmDecodeWindow = 8;
inline constexpr int kNmDecodeEntryBytes = 80;

struct Int8NmDecodeWeights {
  int64_t out = 0, in = 0;
  int64_t windows = 0;                  // ceil(in / 8)
  std::vector<int64_t> group_begin;     // ceil(out / 16) + 1 entry indices (windows apart)
  AlignedVector<uint8_t> entries;       // groups x windows x 80 bytes
  AlignedVector<float> scales, bias;    // per row, padded to a multiple of 16 with zeros
  AlignedVector<int32_t> compensation;  // likewise
  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t padded_in() const { return windows * kNmDecodeWindow; }
  int64_t bytes() const;
};

// wq: s8 [out x in] with at most 2 non-zeros per row in every group of 4 columns
// (InvalidArgument naming the first violation otherwise); w_scale [out]; bias [out] or null.
Int8NmDecodeWeights pack_int8_2of4_decode(const int8_t* wq, const float* w_scale, const float* bias,
                                          int64_t out, int64_t in);
std::vector<int8_t> to_dense(const Int8NmDecodeWeights& w);

}  // namespace sparq::sparse
