// The decoder's causal attention for a prompt's tokens on register-tile products: per query head,
// S = Q K^T for the new tokens over every cached position up to the last of them, a causal
// softmax (token t sees the positions up to first + t), then ctx = P V, both products on the
// encoder's small GEMM tiles (attention.hpp), in blocks of 12 tokens that stop at the block's
// last visible key. A decode step's one token keeps cached_attention.hpp (its group's heads share
// one pass over the cache); prompts of more tokens run here, where each transposed key serves
// every token of the block (6-9 multiply-adds per cycle per token in cached_attention_avx2
// against ~11 on these tiles, Zen 4).
#pragma once

#include <cstdint>
#include <vector>

namespace sparq::models {

// Whether prefill_attention_head runs on this CPU for head size d: d a multiple of 8 and the
// float kernels at AVX2 or above (SPARQ_MAX_ISA included).
bool prefill_attention_available(int64_t d);

// kt [d][width] = the keys [keys][d] (rows `stride` floats apart) transposed, columns keys..width
// zero; width a multiple of 8 and >= keys.
void transpose_keys(const float* k, int64_t keys, int64_t d, int64_t stride, float* kt,
                    int64_t width);

// out[t] (rows out_stride apart) = softmax(scale q[t] K^T over positions 0..first + t) V for the
// `tokens` queries q[t] (rows q_stride apart) at positions first + t; kt from transpose_keys with
// keys >= first + tokens; v [positions][d] contiguous rows. scratch grows to tokens * (width + 1).
void prefill_attention_head(const float* q, int64_t q_stride, const float* kt, int64_t width,
                            const float* v, int64_t first, int64_t tokens, int64_t d, float scale,
                            float* out, int64_t out_stride, std::vector<float>& scratch);

}  // namespace sparq::models
