#include "gpu/attention_pointers.hpp"
#include "gpu/cuda_check.hpp"

namespace sparq::gpu {
namespace {

__global__ void attention_pointers_kernel(const unsigned char* qkv, unsigned char* scores,
                                          unsigned char* probs, unsigned char* ctx, int64_t heads,
                                          int64_t seq, int64_t ld, int64_t head_dim, int64_t count,
                                          void** pointers) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= count) return;
  const int64_t b = i / heads, h = i % heads;
  const int64_t hidden = heads * head_dim, ld_qkv = 3 * hidden, elem = 2;
  const int64_t head_scores = (b * heads + h) * seq * ld;
  const unsigned char* q = qkv + (b * seq * ld_qkv + h * head_dim) * elem;
  pointers[i] = const_cast<unsigned char*>(q);
  pointers[count + i] = const_cast<unsigned char*>(q + hidden * elem);
  pointers[2 * count + i] = scores + head_scores * static_cast<int64_t>(sizeof(float));
  pointers[3 * count + i] = const_cast<unsigned char*>(q + 2 * hidden * elem);
  pointers[4 * count + i] = probs + head_scores * elem;
  pointers[5 * count + i] = ctx + (b * seq * hidden + h * head_dim) * elem;
}

}  // namespace

void attention_pointers(const void* qkv, float* scores, void* probs, void* ctx, int64_t batch,
                        int64_t heads, int64_t seq, int64_t ld, int64_t head_dim, void** pointers,
                        cudaStream_t stream) {
  const int64_t count = batch * heads;
  constexpr int kThreads = 256;
  attention_pointers_kernel<<<static_cast<unsigned>((count + kThreads - 1) / kThreads), kThreads, 0,
                              stream>>>(
      static_cast<const unsigned char*>(qkv), reinterpret_cast<unsigned char*>(scores),
      static_cast<unsigned char*>(probs), static_cast<unsigned char*>(ctx), heads, seq, ld,
      head_dim, count, pointers);
  check_cuda(cudaGetLastError(), "attention_pointers launch");
}

}  // namespace sparq::gpu
