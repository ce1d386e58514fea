// The encoder's self-attention on tensor cores through cuBLAS: the scores (Q K^T, fp32 out) of
// every sequence and head in one batched GEMM, one masked softmax kernel (16-bit probabilities),
// and the context (P V) in a second batched GEMM, up to the longest sequence's length. The fast
// path; attention() in encoder_kernels.hpp, one CTA per query block on CUDA cores, is its twin and
// the fallback when the score buffer would be too large.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/elementwise.hpp"

namespace sparq::gpu {

// Device bytes of the scores and probabilities one call allocates.
int64_t gemm_attention_scratch_bytes(int64_t batch, int64_t seq, int64_t heads);

// Whether the batched GEMMs take this head size (a multiple of 8: every head's queries, keys,
// values and context start 16-byte aligned); attention() takes the others.
bool gemm_attention_supports(int64_t head_dim);

// As attention(): qkv [batch*seq x 3*hidden] -> ctx [batch*seq x hidden] on `device`; keys at
// positions >= lengths[b] are masked out, query rows >= lengths[b] come out zero. The lengths are
// read on the device (lengths_d) and on the host (lengths_h, to skip padding past the longest).
// The values of padded positions in qkv are set to zero on the way (qkv is the encoder's scratch).
void gemm_attention(int device, void* qkv, const int32_t* lengths_d, const int64_t* lengths_h,
                    int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, void* ctx, Elem e,
                    cudaStream_t stream);

}  // namespace sparq::gpu
