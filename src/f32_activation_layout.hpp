// fp32 activations into the f32 tile kernels' slice-major layout (sparse/f32_block_pack.hpp),
// optionally rounded to bf16. The AVX2 path transposes 8 x 8 blocks in registers; the portable
// one is sparse::layout_f32_activations. Both give identical bytes.
#pragma once

#include <cstdint>

namespace sparq {

// Uses AVX2 when the CPU has it (and SPARQ_MAX_ISA allows it).
void layout_f32_activations(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                            bool round_to_bf16, float* dst);

// x fp32 [tokens x in] -> the bf16 kernel's slices (sparse/bf16_block_pack.hpp), rounded to
// nearest even. Uses AVX-512 or AVX2 when the CPU has it (identical bytes).
void layout_bf16_activations(const float* x, int64_t tokens, int64_t in, uint16_t* dst);

namespace detail {
// The fp32 rows behind `count` slots of a slice whose first token is first_token: rows[k] is the
// row of token first_token + slot_token(slot0 + k), or null for a slot past `tokens` (padding,
// laid out as zeros). Shared by the vector layouts.
template <typename SlotToken>
void slot_rows(const float* x, int64_t tokens, int64_t in, int64_t first_token, int slot0,
               int count, SlotToken slot_token, const float** rows) {
  for (int k = 0; k < count; ++k) {
    const int64_t t = first_token + slot_token(slot0 + k);
    rows[k] = t < tokens ? x + t * in : nullptr;
  }
}

void layout_bf16_activations_avx2(const float* x, int64_t tokens, int64_t in, uint16_t* dst);
// AVX-512 F/BW.
void layout_bf16_activations_avx512(const float* x, int64_t tokens, int64_t in, uint16_t* dst);
void layout_f32_activations_avx2(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                                 bool round_to_bf16, float* dst);
}  // namespace detail

}  // namespace sparq
