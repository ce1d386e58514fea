// The packed layout of the bf16 4x1 block-sparse tile kernel (AVX512_BF16, vdpbf16ps): the
// sparse weight is the left operand, tokens are the vector dimension, and each dot-product step
// takes a pair of input columns.
//
// Weights (stored as bf16, half the bytes of fp32): output rows in groups of 4 (the last group
// zero-padded). For each group, the input columns where its 4x1 block holds a non-zero, in pairs:
// u32 column byte offsets c0 * 128, c1 * 128, then for rows 0..3 the bf16 pair (w[r][c0],
// w[r][c1]) -> 24 bytes per pair, 12 per 4x1 block (fp32 spends 20). A short last pair repeats c0
// with zero weights. kEntryReadAhead zero entries follow the last group's.
//
// Activations: bf16 (rounded to nearest even) in slices of 64 tokens, each [in][64]; within a
// column, slot s holds token bf16_slice_token(s), the order in which vpunpck{l,h}wd of a pair's
// two columns leave token 16L + 4q + j in lane L, dword j of pair vector q (sparse/
// int8_block_pack.hpp's quads order, so the AVX-512 tile store serves both).
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kBf16SliceTokens = 64;
inline constexpr int kBf16ColumnBytes = kBf16SliceTokens * 2;
inline constexpr int kBf16EntryBytes = 24;

int bf16_slice_token(int slot);

struct Bf16BlockWeights {
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;  // ceil(out / 4) + 1 entry indices
  AlignedVector<uint8_t> entries;    // kBf16EntryBytes each
  AlignedVector<float> bias;         // per output row, padded to a multiple of 4 with zeros
  int64_t nonzero_blocks = 0;        // 4x1 blocks holding a non-zero

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// w: fp32 [out x in] whose zeros are the pruned entries (rounded to bf16 here); bias: [out] or
// null.
Bf16BlockWeights pack_bf16_4x1(const float* w, const float* bias, int64_t out, int64_t in);
// The bf16-rounded fp32 [out x in] weight the packed form holds (for round-trip tests).
std::vector<float> to_dense(const Bf16BlockWeights& w);

// bf16 elements the activation buffer of `tokens` tokens needs.
int64_t bf16_activation_elements(int64_t tokens, int64_t in);
// x fp32 [tokens x in] -> the slice layout above (portable reference of the vector version).
void layout_bf16_activations(const float* x, int64_t tokens, int64_t in, uint16_t* dst);

}  // namespace sparq::sparse
