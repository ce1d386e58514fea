// The packed layouts of the int8 4x1 block-sparse kernels (ITREX-style: the sparse weight is the
// left operand, tokens are the vector dimension).
//
// Weights: output rows in groups of 4 (the last group zero-padded). For each group, the input
// columns where the 4x1 block holds a non-zero are bundled into entries of `cols_per_entry`
// columns (a short last bundle repeats its first column with zero weights):
//   pairs_i16 (AVX2, vpmaddwd): u32 column byte offsets[2], then for rows 0..3: s16 w[r][c0],
//   w[r][c1]
//                               -> 24 bytes per entry
//   quads_u8 (AVX-512 VNNI, vpdpbusd): u32 offsets[4], then for rows 0..3: s8 w[r][c0..c3]
//                               -> 32 bytes per entry
// A column byte offset is column * x_column_bytes: the kernel adds it to the activation chunk base.
//
// Activations: tokens in chunks of 64, each chunk cut into slices of slice_tokens(layout) tokens
// (16 for pairs_i16, 64 for quads_u8); a slice is [in][slice_tokens] elements: s16 (pairs_i16)
// or u8 holding q + 128 (quads_u8, since vpdpbusd multiplies unsigned by signed; the kernel
// subtracts 128 * sum(w[r]) per row, the `compensation`). A slice of 16 s16 tokens for in = 768
// is 24 KiB: it stays in L1 while every row group runs over it. Padding tokens are zero (q = 0).
// The per-token scales of a chunk are stored in the order in which the kernel's vector lanes hold
// the tokens (chunk_token gives that order).
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

enum class Int8Layout { pairs_i16, quads_u8 };
inline constexpr int kChunkTokens = 64;
// Zero entries after the last group's, so a kernel may read this many entries ahead.
inline constexpr int kEntryReadAhead = 8;

int cols_per_entry(Int8Layout layout);
int entry_bytes(Int8Layout layout);
inline int x_element_bytes(Int8Layout layout) { return layout == Int8Layout::pairs_i16 ? 2 : 1; }
inline int slice_tokens(Int8Layout layout) { return layout == Int8Layout::pairs_i16 ? 16 : 64; }
// Bytes between two input columns of a slice; entries store column * x_column_bytes.
inline int64_t x_column_bytes(Int8Layout layout) {
  return slice_tokens(layout) * x_element_bytes(layout);
}
// Byte offset of (token t, input column i) in the activation buffer of a layer with `in` columns.
inline int64_t x_offset(Int8Layout layout, int64_t in, int64_t t, int64_t i) {
  const int64_t st = slice_tokens(layout);
  return ((t / st) * in + i) * x_column_bytes(layout) + (t % st) * x_element_bytes(layout);
}
// The token (0..63, inside its chunk) whose scale sits at position `slot` of the chunk's scales.
int chunk_token(Int8Layout layout, int slot);

struct Int8BlockWeights {
  Int8Layout layout = Int8Layout::pairs_i16;
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;     // ceil(out / 4) + 1 entry indices
  AlignedVector<uint8_t> entries;       // entry_bytes(layout) each
  AlignedVector<float> scales;          // per output row, padded to a multiple of 4 with zeros
  AlignedVector<float> bias;            // per output row, zeros when the layer has no bias
  AlignedVector<int32_t> compensation;  // quads_u8: 128 * sum_i w[r][i]; pairs_i16: zeros
  int64_t nonzero_blocks = 0;           // 4x1 blocks holding a non-zero

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// wq: s8 [out x in], w_scale: [out], bias: [out] or null.
Int8BlockWeights pack_int8_4x1(const int8_t* wq, const float* w_scale, const float* bias,
                               int64_t out, int64_t in, Int8Layout layout);
// The s8 [out x in] weight the packed form holds (for round-trip tests).
std::vector<int8_t> to_dense(const Int8BlockWeights& w);

// Activations already quantized (xq s8 [tokens x in], one scale per token) -> the kernel layout.
// x must hold ceil(tokens / 64) * 64 * in elements, scales ceil(tokens / 64) * 64 floats.
void layout_activations(const int8_t* xq, const float* x_scale, int64_t tokens, int64_t in,
                        Int8Layout layout, uint8_t* x, float* scales);

}  // namespace sparq::sparse
