// One CTA computes one block row of the weight (R output channels) for 64 tokens: four warps, each
// owning 16 tokens and R/16 accumulator fragments. For every stored block the CTA stages the
// matching 64 x C slice of x in shared memory (zero-filled past the last token and the last input
// column, so no shape needs padding), then each warp multiplies the R x C block by its 16 x C slice
// with 16x16x16 wmma. When x rows are 16-byte aligned (in % 8 == 0, aligned base) the slices come
// in with cp.async, kStages blocks ahead of the one being multiplied, so the loads of later blocks
// overlap the tensor-core work instead of each block waiting for its own; otherwise each thread
// copies elements synchronously. The epilogue goes through shared memory so that each thread
// writes whole output elements with bias, activation and residual applied.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline_primitives.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>

#include "gpu/activation.cuh"
#include "gpu/bsr_cta.cuh"
#include "gpu/bsr_mma.hpp"
#include "gpu/cuda_check.hpp"

namespace sparq::gpu {
namespace {

constexpr int kTokensPerWarp = kBsrTokensPerWarp;
constexpr int kTokensPerCta = kBsrTokensPerCta;
constexpr int kThreads = kBsrThreads;
// Shared-memory row padding against bank conflicts. wmma wants every fragment row start 32-byte
// aligned, i.e. leading dimensions of a multiple of 16 halves / 8 floats.
constexpr int kPad = 16;
// Blocks in flight with cp.async (the one multiplied and kStages - 1 ahead).
constexpr int kStages = 4;
constexpr int kChunk = 8;  // 16-byte cp.async = 8 halves

// Synchronous staging of x[t0.., k0..] into xs (token-major, leading dimension kXld).
template <typename T, int C, int kXld>
__device__ void stage_sync(const T* x, int64_t tokens, int64_t in, int64_t t0, int64_t k0, T* xs) {
  const T zero = from_float<T>(0.0f);
  for (int e = threadIdx.x; e < kTokensPerCta * C; e += kThreads) {
    const int t = e / C, k = e % C;
    const int64_t token = t0 + t, col = k0 + k;
    xs[t * kXld + k] = token < tokens && col < in ? x[token * in + col] : zero;
  }
}

// The same slice with 16-byte cp.async. With in % 8 == 0 and k0 % 8 == 0 an 8-element chunk lies
// wholly inside or wholly past the last column; chunks past the end are zero-filled without reading
// (src-size 0, from the valid base address).
template <typename T, int C, int kXld>
__device__ void stage_async(const T* x, int64_t tokens, int64_t in, int64_t t0, int64_t k0, T* xs) {
  constexpr int kChunksPerRow = C / kChunk;
  for (int e = threadIdx.x; e < kTokensPerCta * kChunksPerRow; e += kThreads) {
    const int t = e / kChunksPerRow, k = (e % kChunksPerRow) * kChunk;
    const int64_t token = t0 + t, col = k0 + k;
    T* dst = xs + t * kXld + k;
    if (token < tokens && col < in)
      __pipeline_memcpy_async(dst, x + token * in + col, 16);
    else
      __pipeline_memcpy_async(dst, x, 16, 16);
  }
}

// One stored block: the warp's 16 tokens x C slice against the R x C weight block.
template <typename T, int R, int C, int kXld>
__device__ void multiply_block(
    const T* xs, const T* wblock, int warp,
    nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> (&acc)[R / 16]) {
  using namespace nvcuda;
#pragma unroll
  for (int kk = 0; kk < C / 16; ++kk) {
    // x^T slice (k x token) read column-major from the token-major staging rows.
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> xf;
    wmma::load_matrix_sync(xf, xs + warp * kTokensPerWarp * kXld + kk * 16, kXld);
#pragma unroll
    for (int i = 0; i < R / 16; ++i) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> wf;
      wmma::load_matrix_sync(wf, wblock + i * 16 * C + kk * 16, C);
      wmma::mma_sync(acc[i], wf, xf, acc[i]);
    }
  }
}

template <typename T, int R, int C, bool kAsync>
__global__ void __launch_bounds__(kThreads)
    bsr_mma_kernel(int64_t out, int64_t in, const int64_t* row_ptr, const int32_t* col_idx,
                   const T* values, const T* x, int64_t tokens, const float* bias, Activation act,
                   const T* residual, T* y) {
  using namespace nvcuda;
  constexpr int kXld = C + kPad;  // a multiple of 16 halves
  constexpr int kYld = R + 8;     // fp32 accumulator staging, a multiple of 8 floats
  constexpr int kBuffers = kAsync ? kStages : 1;
  // Every buffer starts 128-byte aligned (cp.async wants 16, wmma 32).
  static_assert(kTokensPerCta * kXld * sizeof(T) % 128 == 0);
  __shared__ __align__(128) T xs[kBuffers][kTokensPerCta * kXld];
  __shared__ __align__(32) float ys[kTokensPerCta * kYld];

  const int64_t block_row = blockIdx.x;
  const int64_t t0 = int64_t{blockIdx.y} * kTokensPerCta;
  const int warp = threadIdx.x / 32;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[R / 16];
#pragma unroll
  for (int i = 0; i < R / 16; ++i) wmma::fill_fragment(acc[i], 0.0f);

  const int64_t first = row_ptr[block_row], last = row_ptr[block_row + 1];
  if constexpr (kAsync) {
    // Group g (one per block, empty past the last) fills buffer g % kStages.
    for (int s = 0; s < kStages - 1; ++s) {
      if (first + s < last)
        stage_async<T, C, kXld>(x, tokens, in, t0, int64_t{col_idx[first + s]} * C, xs[s]);
      __pipeline_commit();
    }
    for (int64_t b = first; b < last; ++b) {
      const int64_t i = b - first;
      __pipeline_wait_prior(kStages - 2);  // this thread's copies of block i have landed
      __syncthreads();  // everyone's have; and every warp is done with block i - 1's buffer
      const int64_t ahead = b + kStages - 1;
      if (ahead < last)
        stage_async<T, C, kXld>(x, tokens, in, t0, int64_t{col_idx[ahead]} * C,
                                xs[(i + kStages - 1) % kStages]);
      __pipeline_commit();
      multiply_block<T, R, C, kXld>(xs[i % kStages], values + b * (R * C), warp, acc);
    }
  } else {
    for (int64_t b = first; b < last; ++b) {
      __syncthreads();  // the previous block's slice is no longer read
      stage_sync<T, C, kXld>(x, tokens, in, t0, int64_t{col_idx[b]} * C, xs[0]);
      __syncthreads();
      multiply_block<T, R, C, kXld>(xs[0], values + b * (R * C), warp, acc);
    }
  }
  // acc[i] holds rows i*16.. of the block row x the warp's 16 tokens; stored token-major.
#pragma unroll
  for (int i = 0; i < R / 16; ++i)
    wmma::store_matrix_sync(ys + warp * kTokensPerWarp * kYld + i * 16, acc[i], kYld,
                            wmma::mem_col_major);
  __syncthreads();
  write_bsr_tile<R>([&](int t, int r, int64_t, int64_t) { return ys[t * kYld + r]; }, t0, block_row,
                    tokens, out, bias, act, residual, y);
}

template <typename T, int R, int C>
void launch(const BsrDevice& w, const void* x, int64_t tokens, const float* bias, Activation act,
            const void* residual, void* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(w.block_rows),
                  static_cast<unsigned>((tokens + kTokensPerCta - 1) / kTokensPerCta));
  const bool rows_aligned = w.in % kChunk == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const auto kernel = rows_aligned ? bsr_mma_kernel<T, R, C, true> : bsr_mma_kernel<T, R, C, false>;
  kernel<<<grid, kThreads, 0, stream>>>(
      w.out, w.in, w.row_ptr, w.col_idx, static_cast<const T*>(w.values), static_cast<const T*>(x),
      tokens, bias, act, static_cast<const T*>(residual), static_cast<T*>(y));
  check_cuda(cudaGetLastError(), "bsr_mma_kernel launch");
}

template <typename T>
void dispatch(const BsrDevice& w, const void* x, int64_t tokens, const float* bias, Activation act,
              const void* residual, void* y, cudaStream_t stream) {
  dispatch_block_shape(w.block_rows_of, w.block_cols_of, "bsr_mma", [&](auto r, auto c) {
    launch<T, decltype(r)::value, decltype(c)::value>(w, x, tokens, bias, act, residual, y, stream);
  });
}

}  // namespace

bool bsr_mma_supports(int rows, int cols) {
  return (rows == 16 || rows == 32) && (cols == 16 || cols == 32);
}

void bsr_mma_forward(const BsrDevice& w, Elem e, const void* x, int64_t tokens, const float* bias,
                     Activation act, const void* residual, void* y, cudaStream_t stream) {
  const size_t elem_bytes = 2;
  for (int64_t t0 = 0; t0 < tokens; t0 += kBsrMaxTokensPerLaunch) {  // the grid's limit
    const int64_t n = std::min(kBsrMaxTokensPerLaunch, tokens - t0);
    const void* xc = static_cast<const char*>(x) + t0 * w.in * elem_bytes;
    void* yc = static_cast<char*>(y) + t0 * w.out * elem_bytes;
    const void* rc =
        residual ? static_cast<const char*>(residual) + t0 * w.out * elem_bytes : nullptr;
    if (e == Elem::f16)
      dispatch<__half>(w, xc, n, bias, act, rc, yc, stream);
    else
      dispatch<__nv_bfloat16>(w, xc, n, bias, act, rc, yc, stream);
  }
}

}  // namespace sparq::gpu
