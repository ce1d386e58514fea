// int8 block-sparse kernel on tensor cores. One CTA computes one block row of the weight (R output
// channels) for 64 tokens: four warps, each owning 16 tokens and R/16 int32 accumulator fragments.
// Both operands are laid out at pack / quantization time so that every wmma fragment is one
// contiguous, 256-byte aligned 16 x 16 tile with a leading dimension of 16 bytes (wmma wants
// 256-bit aligned fragment pointers, and an int8 k step of 16 is only 16 bytes):
// - the weight block in k-panels, [C/16][R][16];
// - the activations, quantized per token, in k-planes, [in_padded/16][plane_tokens][16], zero past
//   the last column and the last token (quantize_rows_planar).
// So the warps load their fragments straight from global memory (L1 / L2) with no staging and no
// barrier in the main loop. The epilogue goes through shared memory: acc * x_scale * w_scale, bias,
// activation, residual, one fp16 output element per thread and step.
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>

#include "gpu/bsr_cta.cuh"
#include "gpu/bsr_mma.hpp"
#include "gpu/cuda_check.hpp"

namespace sparq::gpu {
namespace {

constexpr int kTokensPerWarp = kBsrTokensPerWarp;
constexpr int kTokensPerCta = kBsrTokensPerCta;
constexpr int kThreads = kBsrThreads;
constexpr int kTile = 16;  // wmma m = n = k for int8

template <int R, int C>
__global__ void __launch_bounds__(kThreads)
    bsr_int8_kernel(int64_t out, const int64_t* row_ptr, const int32_t* col_idx,
                    const int8_t* panels, const float* w_scale, const int8_t* q,
                    int64_t plane_tokens, const float* x_scale, int64_t tokens, const float* bias,
                    Activation act, const __half* residual, __half* y) {
  using namespace nvcuda;
  constexpr int kYld = R + 8;  // int32 staging; a multiple of 4 as wmma's store wants
  __shared__ __align__(32) int ys[kTokensPerCta * kYld];

  const int64_t block_row = blockIdx.x;
  const int64_t t0 = int64_t{blockIdx.y} * kTokensPerCta;
  const int warp = threadIdx.x / 32;
  const int64_t plane_bytes = plane_tokens * kTile;
  const int8_t* q_warp = q + (t0 + warp * kTokensPerWarp) * kTile;

  wmma::fragment<wmma::accumulator, 16, 16, 16, int> acc[R / kTile];
#pragma unroll
  for (int i = 0; i < R / kTile; ++i) wmma::fill_fragment(acc[i], 0);

  for (int64_t b = row_ptr[block_row]; b < row_ptr[block_row + 1]; ++b) {
    const int64_t plane0 = int64_t{col_idx[b]} * (C / kTile);
    const int8_t* wblock = panels + b * (R * C);
#pragma unroll
    for (int kk = 0; kk < C / kTile; ++kk) {
      // x^T tile (k x token): element (k, t) at t * 16 + k of the plane, i.e. column-major.
      wmma::fragment<wmma::matrix_b, 16, 16, 16, signed char, wmma::col_major> xf;
      wmma::load_matrix_sync(xf, q_warp + (plane0 + kk) * plane_bytes, kTile);
#pragma unroll
      for (int i = 0; i < R / kTile; ++i) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, signed char, wmma::row_major> wf;
        wmma::load_matrix_sync(wf, wblock + kk * (R * kTile) + i * (kTile * kTile), kTile);
        wmma::mma_sync(acc[i], wf, xf, acc[i]);
      }
    }
  }
  // acc[i] holds rows i*16.. of the block row x the warp's 16 tokens; stored token-major.
#pragma unroll
  for (int i = 0; i < R / kTile; ++i)
    wmma::store_matrix_sync(ys + warp * kTokensPerWarp * kYld + i * kTile, acc[i], kYld,
                            wmma::mem_col_major);
  __syncthreads();
  // The same order of operations as int8_epilogue (elementwise.cu) and the CPU layers.
  write_bsr_tile<R>(
      [&](int t, int r, int64_t token, int64_t o) {
        return static_cast<float>(ys[t * kYld + r]) * x_scale[token] * w_scale[o];
      },
      t0, block_row, tokens, out, bias, act, residual, y);
}

template <int R, int C>
void launch(const BsrDevice& w, const float* w_scale, const int8_t* q, int64_t plane_tokens,
            const float* x_scale, int64_t tokens, const float* bias, Activation act,
            const void* residual, void* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(w.block_rows),
                  static_cast<unsigned>((tokens + kTokensPerCta - 1) / kTokensPerCta));
  bsr_int8_kernel<R, C><<<grid, kThreads, 0, stream>>>(
      w.out, w.row_ptr, w.col_idx, static_cast<const int8_t*>(w.values), w_scale, q, plane_tokens,
      x_scale, tokens, bias, act, static_cast<const __half*>(residual), static_cast<__half*>(y));
  check_cuda(cudaGetLastError(), "bsr_int8_kernel launch");
}

}  // namespace

int64_t bsr_int8_max_tokens() { return kBsrMaxTokensPerLaunch; }
int64_t bsr_int8_plane_tokens(int64_t tokens) {
  return (tokens + kTokensPerCta - 1) / kTokensPerCta * kTokensPerCta;
}

void bsr_int8_forward(const BsrDevice& w, const float* w_scale, const int8_t* q, int64_t ld_q,
                      int64_t plane_tokens, const float* x_scale, int64_t tokens, const float* bias,
                      Activation act, const void* residual, void* y, cudaStream_t stream) {
  const int r = w.block_rows_of, c = w.block_cols_of;
  // The kernel reads whole blocks of columns and whole 64-token tiles, and wmma wants every
  // fragment 32-byte aligned: planes of a multiple of 64 tokens, a 32-byte aligned q.
  const int64_t columns_read = (w.in + c - 1) / c * c;
  if (tokens > bsr_int8_max_tokens() || plane_tokens % kTokensPerCta != 0 ||
      plane_tokens < tokens || ld_q % kTile != 0 || ld_q < columns_read ||
      reinterpret_cast<uintptr_t>(q) % 32 != 0)
    throw InvalidArgument("bsr_int8_forward: " + std::to_string(tokens) + " tokens in planes of " +
                          std::to_string(plane_tokens) + " tokens x " + std::to_string(ld_q) +
                          " columns (expected at most " + std::to_string(bsr_int8_max_tokens()) +
                          " tokens, planes a multiple of 64 tokens and of 16 columns covering " +
                          std::to_string(columns_read) + ", q 32-byte aligned)");
  dispatch_block_shape(r, c, "bsr_int8", [&](auto rows, auto cols) {
    launch<decltype(rows)::value, decltype(cols)::value>(w, w_scale, q, plane_tokens, x_scale,
                                                         tokens, bias, act, residual, y, stream);
  });
}

}  // namespace sparq::gpu
