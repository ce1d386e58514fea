// The encoder's GPU kernels besides the linear layers: the embedding gather with its LayerNorm,
// LayerNorm, and masked softmax attention. Host-side launchers; the kernels live in
// encoder_kernels.cu. Activations are 16-bit (Elem), statistics and softmax fp32.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/elementwise.hpp"

namespace sparq::gpu {

// x [tokens x hidden] = LayerNorm(word[ids[t]] + position[t % seq] + token_type[types[t]]), the
// tables fp32 [rows x hidden]. token_type may be null (DistilBERT: no table); types may be null
// (every token type 0). ids and types are trusted: BertEncoder validated them.
void embed_layer_norm(const int32_t* ids, const int32_t* types, const float* word,
                      const float* position, const float* token_type, const float* gamma,
                      const float* beta, float eps, int64_t tokens, int64_t seq, int64_t hidden,
                      void* x, Elem e, cudaStream_t stream);

// In place, per row of `hidden`: x = (x - mean) / sqrt(var + eps) * gamma + beta.
void layer_norm(void* x, const float* gamma, const float* beta, float eps, int64_t tokens,
                int64_t hidden, Elem e, cudaStream_t stream);

// The most a head may have: each thread of the attention kernel holds a fixed number of outputs.
constexpr int64_t kMaxAttentionHeadDim = 128;

// Dynamic shared memory one attention block needs for `seq` and `head_dim`.
int64_t attention_shared_bytes(int64_t seq, int64_t head_dim);

// Self-attention of every sequence and head: qkv [batch*seq x 3*hidden] (query, key, value
// stacked per row as the fused layer writes them) -> ctx [batch*seq x hidden]. Keys at positions
// >= lengths[b] are masked out; query rows >= lengths[b] are written as zeros. head_dim <=
// kMaxAttentionHeadDim; the caller checks attention_shared_bytes against the device's limit
// (max_shared_bytes, sharedMemPerBlockOptin) and batch <= 65535.
void attention(const void* qkv, const int32_t* lengths, int64_t batch, int64_t seq, int64_t heads,
               int64_t head_dim, void* ctx, Elem e, int64_t max_shared_bytes, cudaStream_t stream);

// Row-wise softmax of scores [batch x heads x seq x ld] (fp32, row-major [query][key] per head,
// rows ld >= seq apart) over the keys < lengths[b], into probs (16-bit, same layout): keys >=
// lengths[b] (up to seq) get 0, and whole rows of queries >= lengths[b] are 0 (their scores are
// not read).
void masked_softmax(const float* scores, const int32_t* lengths, int64_t batch, int64_t heads,
                    int64_t seq, int64_t ld, void* probs, Elem e, cudaStream_t stream);

// qkv [batch*seq x 3*hidden], 16-bit: the values (last hidden columns) of every position at or
// past its sequence's length set to zero, so that a product over padded keys with zero
// probabilities is zero whatever those positions held.
void zero_padded_values(void* qkv, const int32_t* lengths, int64_t batch, int64_t seq,
                        int64_t hidden, cudaStream_t stream);

}  // namespace sparq::gpu
