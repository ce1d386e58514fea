#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <string>

#include "gpu/activation.cuh"
#include "gpu/cuda_check.hpp"
#include "gpu/encoder_kernels.hpp"

namespace sparq::gpu {
namespace {

constexpr int kNormThreads = 128;

// Shapes of the attention kernel: a block of kAttnThreads threads takes kAttnRows query rows of
// one head and walks the keys in tiles of kAttnKeys rows staged in shared memory. Each thread
// owns up to kAttnAccumulators outputs of the block's [kAttnRows x head_dim] context, which caps
// head_dim at kAttnThreads * kAttnAccumulators / kAttnRows.
constexpr int kAttnThreads = 128;
constexpr int kAttnRows = 16;
constexpr int kAttnKeys = 32;
constexpr int kAttnAccumulators = 16;
static_assert(kAttnThreads * kAttnAccumulators / kAttnRows == kMaxAttentionHeadDim);
// Dynamic shared memory above this needs an explicit opt-in per kernel.
constexpr int64_t kDefaultSharedLimit = 48 * 1024;

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The sum over the block (blockDim.x a multiple of 32), returned to every thread. `partial` holds
// one float per warp; the leading barrier keeps a previous call's readers ahead of this call's
// writers.
__device__ float block_sum(float v, float* partial) {
  v = warp_sum(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += partial[w];
  return total;
}

// LayerNorm of one row whose values load(i) yields, in fp32 with two passes (mean, then squared
// deviations) so that a large common offset costs no digits. Each thread writes only the columns
// it reads, after both reductions, so y may be the row load reads.
template <typename T, typename Load>
__device__ void normalize_row(Load load, const float* gamma, const float* beta, float eps,
                              int hidden, T* y, float* partial) {
  float sum = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) sum += load(i);
  const float mean = block_sum(sum, partial) / static_cast<float>(hidden);
  float squares = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    const float c = load(i) - mean;
    squares += c * c;
  }
  const float var = block_sum(squares, partial) / static_cast<float>(hidden);
  const float inv = 1.0f / sqrtf(var + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x)
    y[i] = from_float<T>((load(i) - mean) * inv * gamma[i] + beta[i]);
}

// One block per token.
template <typename T>
__global__ void embed_layer_norm_kernel(const int32_t* ids, const int32_t* types, const float* word,
                                        const float* position, const float* token_type,
                                        const float* gamma, const float* beta, float eps, int seq,
                                        int hidden, T* x) {
  __shared__ float partial[kNormThreads / 32];
  const int64_t t = blockIdx.x;
  const float* w = word + static_cast<int64_t>(ids[t]) * hidden;
  const float* p = position + (t % seq) * hidden;
  const float* tt =
      token_type ? token_type + static_cast<int64_t>(types ? types[t] : 0) * hidden : nullptr;
  // The CPU encoder's order of additions: word + position, then the token type.
  auto load = [=](int i) {
    float v = w[i] + p[i];
    if (tt) v += tt[i];
    return v;
  };
  normalize_row(load, gamma, beta, eps, hidden, x + t * hidden, partial);
}

template <typename T>
__global__ void layer_norm_kernel(T* x, const float* gamma, const float* beta, float eps,
                                  int hidden) {
  __shared__ float partial[kNormThreads / 32];
  T* row = x + static_cast<int64_t>(blockIdx.x) * hidden;
  auto load = [=](int i) { return to_float<T>(row[i]); };
  normalize_row(load, gamma, beta, eps, hidden, row, partial);
}

// Block (query block, head, sequence). Shared memory: scores [kAttnRows x seq] fp32, the block's
// queries [kAttnRows x d] fp32 (pre-scaled), and one key or value tile [kAttnKeys x (d + 1)] fp32
// (the extra column spreads a column's reads over the banks). Only the `len` real keys are ever
// scored, which is the padding mask; the softmax is a full row max / sum over them in fp32.
template <typename T>
__global__ void attention_kernel(const T* qkv, const int32_t* lengths, int seq, int heads, int d,
                                 float scale, T* ctx) {
  extern __shared__ float shared[];
  const int b = blockIdx.z, head = blockIdx.y, row0 = blockIdx.x * kAttnRows;
  const int len = lengths[b];
  const int hidden = heads * d;
  const int64_t ld = 3 * static_cast<int64_t>(hidden);
  // Position i of this sequence and head: the query at q_base + i * ld, its key `hidden` and its
  // value 2 * `hidden` elements further.
  const T* q_base = qkv + static_cast<int64_t>(b) * seq * ld + static_cast<int64_t>(head) * d;
  T* out = ctx + static_cast<int64_t>(b) * seq * hidden + static_cast<int64_t>(head) * d;
  const int rows = min(kAttnRows, seq - row0);
  const int live = max(0, min(rows, len - row0));  // rows of real (unpadded) queries
  const int tid = threadIdx.x;

  for (int idx = tid; idx < (rows - live) * d; idx += blockDim.x) {
    const int r = live + idx / d, e = idx % d;
    out[static_cast<int64_t>(row0 + r) * hidden + e] = from_float<T>(0.0f);
  }
  if (live == 0) return;  // the same for every thread of the block: no barrier is skipped

  float* scores = shared;
  float* q = scores + kAttnRows * seq;
  float* tile = q + kAttnRows * d;
  const int stride = d + 1;
  for (int idx = tid; idx < live * d; idx += blockDim.x) {
    const int r = idx / d, e = idx % d;
    q[r * d + e] = to_float<T>(q_base[static_cast<int64_t>(row0 + r) * ld + e]) * scale;
  }

  for (int k0 = 0; k0 < len; k0 += kAttnKeys) {
    const int keys = min(kAttnKeys, len - k0);
    __syncthreads();  // the previous tile is no longer read (and the queries are written)
    for (int idx = tid; idx < keys * d; idx += blockDim.x) {
      const int j = idx / d, e = idx % d;
      tile[j * stride + e] = to_float<T>(q_base[static_cast<int64_t>(k0 + j) * ld + hidden + e]);
    }
    __syncthreads();
    for (int idx = tid; idx < live * keys; idx += blockDim.x) {
      const int r = idx / keys, j = idx % keys;
      const float* qr = q + r * d;
      const float* kj = tile + j * stride;
      float s = 0.0f;
      for (int e = 0; e < d; ++e) s += qr[e] * kj[e];
      scores[r * seq + k0 + j] = s;
    }
  }
  __syncthreads();

  // Softmax over the real keys, one warp per query row.
  const int warp = tid / 32, lane = tid % 32, warps = static_cast<int>(blockDim.x / 32);
  for (int r = warp; r < live; r += warps) {
    float* s = scores + r * seq;
    float m = -INFINITY;
    for (int j = lane; j < len; j += 32) m = fmaxf(m, s[j]);
    m = warp_max(m);
    float sum = 0.0f;
    for (int j = lane; j < len; j += 32) {
      const float p = expf(s[j] - m);
      s[j] = p;
      sum += p;
    }
    const float inv = 1.0f / warp_sum(sum);  // >= 1: the maximum contributes exp(0)
    for (int j = lane; j < len; j += 32) s[j] *= inv;
  }

  // Context = probabilities x values; this thread's outputs are idx = tid + a * kAttnThreads.
  float acc[kAttnAccumulators];
#pragma unroll
  for (int a = 0; a < kAttnAccumulators; ++a) acc[a] = 0.0f;
  for (int k0 = 0; k0 < len; k0 += kAttnKeys) {
    const int keys = min(kAttnKeys, len - k0);
    __syncthreads();  // the softmax, or the previous tile's reads, are done
    for (int idx = tid; idx < keys * d; idx += blockDim.x) {
      const int j = idx / d, e = idx % d;
      tile[j * stride + e] =
          to_float<T>(q_base[static_cast<int64_t>(k0 + j) * ld + 2 * hidden + e]);
    }
    __syncthreads();
#pragma unroll
    for (int a = 0; a < kAttnAccumulators; ++a) {
      const int idx = tid + a * kAttnThreads;
      if (idx < live * d) {
        const int r = idx / d, e = idx % d;
        const float* p = scores + r * seq + k0;
        float v = acc[a];
        for (int j = 0; j < keys; ++j) v += p[j] * tile[j * stride + e];
        acc[a] = v;
      }
    }
  }
#pragma unroll
  for (int a = 0; a < kAttnAccumulators; ++a) {
    const int idx = tid + a * kAttnThreads;
    if (idx < live * d) {
      const int r = idx / d, e = idx % d;
      out[static_cast<int64_t>(row0 + r) * hidden + e] = from_float<T>(acc[a]);
    }
  }
}

// One warp per row (sequence, head, query).
template <typename T>
__global__ void masked_softmax_kernel(const float* scores, const int32_t* lengths, int64_t rows,
                                      int heads, int seq, int64_t ld, T* probs) {
  const int64_t row = blockIdx.x * int64_t{blockDim.x / 32} + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together: no shuffle loses a lane
  const int lane = threadIdx.x % 32;
  const int64_t b = row / (int64_t{heads} * seq);
  const int query = static_cast<int>(row % seq);
  const int len = lengths[b];
  const float* s = scores + row * ld;
  T* p = probs + row * ld;
  if (query >= len) {
    for (int j = lane; j < seq; j += 32) p[j] = from_float<T>(0.0f);
    return;
  }
  float m = -INFINITY;
  for (int j = lane; j < len; j += 32) m = fmaxf(m, s[j]);
  m = warp_max(m);
  float sum = 0.0f;
  for (int j = lane; j < len; j += 32) sum += expf(s[j] - m);
  const float inv = 1.0f / warp_sum(sum);  // >= 1 term: the maximum contributes exp(0)
  for (int j = lane; j < seq; j += 32) p[j] = from_float<T>(j < len ? expf(s[j] - m) * inv : 0.0f);
}

// One block per token row: zeroes the value columns of positions at or past their sequence's
// length.
__global__ void zero_padded_values_kernel(unsigned short* qkv, const int32_t* lengths, int64_t seq,
                                          int64_t hidden) {
  const int64_t row = blockIdx.x;
  if (row % seq < lengths[row / seq]) return;
  unsigned short* v = qkv + row * 3 * hidden + 2 * hidden;
  for (int64_t i = threadIdx.x; i < hidden; i += blockDim.x) v[i] = 0;  // +0 in fp16 and bf16
}

template <typename T>
void launch_attention(const void* qkv, const int32_t* lengths, int64_t batch, int64_t seq,
                      int64_t heads, int64_t head_dim, void* ctx, int64_t shared_bytes,
                      int64_t max_shared_bytes, cudaStream_t stream) {
  // The device's limit rather than this call's need: one value for every caller, so a concurrent
  // call with a shorter sequence cannot lower the limit under this launch.
  if (shared_bytes > kDefaultSharedLimit)
    check_cuda(
        cudaFuncSetAttribute(attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(max_shared_bytes)),
        "cudaFuncSetAttribute (attention shared memory)");
  const dim3 grid(static_cast<unsigned>((seq + kAttnRows - 1) / kAttnRows),
                  static_cast<unsigned>(heads), static_cast<unsigned>(batch));
  const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
  attention_kernel<T><<<grid, kAttnThreads, static_cast<size_t>(shared_bytes), stream>>>(
      static_cast<const T*>(qkv), lengths, static_cast<int>(seq), static_cast<int>(heads),
      static_cast<int>(head_dim), scale, static_cast<T*>(ctx));
}

}  // namespace

void embed_layer_norm(const int32_t* ids, const int32_t* types, const float* word,
                      const float* position, const float* token_type, const float* gamma,
                      const float* beta, float eps, int64_t tokens, int64_t seq, int64_t hidden,
                      void* x, Elem e, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(tokens);
  if (e == Elem::f16)
    embed_layer_norm_kernel<<<blocks, kNormThreads, 0, stream>>>(
        ids, types, word, position, token_type, gamma, beta, eps, static_cast<int>(seq),
        static_cast<int>(hidden), static_cast<__half*>(x));
  else
    embed_layer_norm_kernel<<<blocks, kNormThreads, 0, stream>>>(
        ids, types, word, position, token_type, gamma, beta, eps, static_cast<int>(seq),
        static_cast<int>(hidden), static_cast<__nv_bfloat16*>(x));
  check_cuda(cudaGetLastError(), "embed_layer_norm launch");
}

void layer_norm(void* x, const float* gamma, const float* beta, float eps, int64_t tokens,
                int64_t hidden, Elem e, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(tokens);
  if (e == Elem::f16)
    layer_norm_kernel<<<blocks, kNormThreads, 0, stream>>>(static_cast<__half*>(x), gamma, beta,
                                                           eps, static_cast<int>(hidden));
  else
    layer_norm_kernel<<<blocks, kNormThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(x), gamma,
                                                           beta, eps, static_cast<int>(hidden));
  check_cuda(cudaGetLastError(), "layer_norm launch");
}

void masked_softmax(const float* scores, const int32_t* lengths, int64_t batch, int64_t heads,
                    int64_t seq, int64_t ld, void* probs, Elem e, cudaStream_t stream) {
  const int64_t rows = batch * heads * seq;
  constexpr int kWarpsPerBlock = 4;
  const auto blocks = static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (e == Elem::f16)
    masked_softmax_kernel<<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
        scores, lengths, rows, static_cast<int>(heads), static_cast<int>(seq), ld,
        static_cast<__half*>(probs));
  else
    masked_softmax_kernel<<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
        scores, lengths, rows, static_cast<int>(heads), static_cast<int>(seq), ld,
        static_cast<__nv_bfloat16*>(probs));
  check_cuda(cudaGetLastError(), "masked_softmax launch");
}

void zero_padded_values(void* qkv, const int32_t* lengths, int64_t batch, int64_t seq,
                        int64_t hidden, cudaStream_t stream) {
  zero_padded_values_kernel<<<static_cast<unsigned>(batch * seq), 128, 0, stream>>>(
      static_cast<unsigned short*>(qkv), lengths, seq, hidden);
  check_cuda(cudaGetLastError(), "zero_padded_values launch");
}

int64_t attention_shared_bytes(int64_t seq, int64_t head_dim) {
  return static_cast<int64_t>(sizeof(float)) *
         (kAttnRows * seq + kAttnRows * head_dim + kAttnKeys * (head_dim + 1));
}

void attention(const void* qkv, const int32_t* lengths, int64_t batch, int64_t seq, int64_t heads,
               int64_t head_dim, void* ctx, Elem e, int64_t max_shared_bytes, cudaStream_t stream) {
  const int64_t shared_bytes = attention_shared_bytes(seq, head_dim);
  if (head_dim < 1 || head_dim > kMaxAttentionHeadDim || shared_bytes > max_shared_bytes ||
      batch > 65535 || heads > 65535)
    throw NotSupported("attention on cuda: head_dim " + std::to_string(head_dim) + " (at most " +
                       std::to_string(kMaxAttentionHeadDim) + "), seq " + std::to_string(seq) +
                       " (" + std::to_string(shared_bytes) +
                       " bytes of shared memory, the GPU has " + std::to_string(max_shared_bytes) +
                       "), batch " + std::to_string(batch) + " and heads " + std::to_string(heads) +
                       " (at most 65535 each)");
  if (e == Elem::f16)
    launch_attention<__half>(qkv, lengths, batch, seq, heads, head_dim, ctx, shared_bytes,
                             max_shared_bytes, stream);
  else
    launch_attention<__nv_bfloat16>(qkv, lengths, batch, seq, heads, head_dim, ctx, shared_bytes,
                                    max_shared_bytes, stream);
  check_cuda(cudaGetLastError(), "attention launch");
}

}  // namespace sparq::gpu
