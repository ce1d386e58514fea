// The packed layout of the int8 decode kernels (1..4 tokens, memory-bound): the output rows are
// the vector lanes, and the weight's zeros are skipped in 16x1 blocks.
//
// Weights: output rows in groups of 16 (the last group zero-padded). For each group, the input
// columns where its 16x1 block holds a non-zero, in pairs: u16 column c0, u16 column c1, then
// s8 w[r][c0], w[r][c1] for r = 0..15 (interleaved, so that one sign extension gives vpmaddwd's
// pairs) -> 36 bytes per pair, 18 per 16x1 block where dense int8 spends 16. A short last pair
// repeats c0 with zero weights.
// Activations: the quantized tokens widened to s16, [tokens][in].
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kDecodeRows = 16;
inline constexpr int kDecodeEntryBytes = 36;
inline constexpr int kDecodeMaxTokens = 4;
// Column indices are u16.
inline constexpr int64_t kDecodeMaxIn = 65536;

struct Int8DecodeWeights {
  int64_t out = 0, in = 0;
  std::vector<int64_t> group_begin;  // ceil(out / 16) + 1 entry indices
  AlignedVector<uint8_t> entries;    // kDecodeEntryBytes each
  AlignedVector<float> scales;       // per output row, padded to a multiple of 16 with zeros
  AlignedVector<float> bias;         // likewise; zeros when the layer has no bias
  int64_t nonzero_blocks = 0;        // 16x1 blocks holding a non-zero

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// wq: s8 [out x in], w_scale: [out], bias: [out] or null. in <= kDecodeMaxIn.
Int8DecodeWeights pack_int8_decode(const int8_t* wq, const float* w_scale, const float* bias,
                                   int64_t out, int64_t in);
std::vector<int8_t> to_dense(const Int8DecodeWeights& w);

}  // namespace sparq::sparse
