// The packed layout of the f32 4x1 block-sparse tile kernels (the sparse weight is the left
// operand, tokens are the vector dimension, as in the int8 layout).
//
// Weights: output rows in groups of 4 (the last group zero-padded). For each group, one entry per
// input column whose 4x1 block holds a non-zero: u32 column byte offset (column * slice_tokens *
// 4), then f32 w[r][c] for rows 0..3 -> 20 bytes per entry, a quarter more than the 16 bytes of
// the dense weights it replaces. kEntryReadAhead zero entries follow the last group's.
//
// Activations: slices of slice_tokens tokens, each [in][slice_tokens] fp32, the tokens of a
// column in the order the kernel's vector lanes hold them (slice_token gives it); padding tokens
// are zero.
#pragma once

#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

inline constexpr int kF32EntryBytes = 20;

// The token (0..slice_tokens-1) that column position `slot` of a slice holds. For 16-token slices
// (AVX2: two ymm per column) the order is 0-3, 8-11, 4-7, 12-15, matching the transposed store;
// for 32 and 64 (AVX-512: 2 or 4 zmm per column) zmm q lane L holds tokens 4 (n / 16) L + 4q + j.
int f32_slice_token(int slice_tokens, int slot);

struct F32BlockWeights {
  int64_t out = 0, in = 0;
  int slice_tokens = 16;
  std::vector<int64_t> group_begin;  // ceil(out / 4) + 1 entry indices
  AlignedVector<uint8_t> entries;    // kF32EntryBytes each
  AlignedVector<float> bias;         // per output row, padded to a multiple of 4 with zeros
  int64_t nonzero_blocks = 0;        // 4x1 blocks holding a non-zero

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
};

// w: fp32 [out x in] whose zeros are the pruned entries; bias: [out] or null.
F32BlockWeights pack_f32_4x1(const float* w, const float* bias, int64_t out, int64_t in,
                             int slice_tokens);
// The fp32 [out x in] weight the packed form holds (for round-trip tests).
std::vector<float> to_dense(const F32BlockWeights& w);

// Floats the activation buffer of `tokens` tokens needs: ceil(tokens / slice_tokens) slices.
int64_t f32_activation_floats(int64_t tokens, int64_t in, int slice_tokens);
// x fp32 [tokens x in] -> the slice-major layout in dst. With round_to_bf16 every value is
// rounded to the nearest bf16 (ties to even) on the way: the bf16 path on CPUs without bf16
// instructions.
void layout_f32_activations(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                            bool round_to_bf16, float* dst);

}  // namespace sparq::sparse
