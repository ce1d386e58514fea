// The pointer arrays of the encoder's batched attention GEMMs (attention_gemm.cpp), written on the
// device in stream order, since the buffers they point into are allocated per forward.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace sparq::gpu {

// For each (sequence b, head h), i = b * heads + h, into `pointers` (6 * batch * heads entries,
// device memory): [0, n) the head's queries in qkv, [n, 2n) its keys, [2n, 3n) its fp32 scores
// (row-major [seq x ld], heads after each other per sequence), [3n, 4n) its values, [4n, 5n) its
// 16-bit probabilities (the scores' layout), [5n, 6n) its context columns in ctx.
// qkv [batch*seq x 3*heads*head_dim], ctx [batch*seq x heads*head_dim], both 16-bit.
void attention_pointers(const void* qkv, float* scores, void* probs, void* ctx, int64_t batch,
                        int64_t heads, int64_t seq, int64_t ld, int64_t head_dim, void** pointers,
                        cudaStream_t stream);

}  // namespace sparq::gpu
