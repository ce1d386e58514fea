#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gpu/activation.cuh"
#include "gpu/cuda_check.hpp"
#include "gpu/elementwise.hpp"

namespace sparq::gpu {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 * 32 ? blocks : 65535 * 32);
}

template <typename T>
__global__ void from_f32_kernel(const float* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = from_float<T>(x[i]);
}

template <typename T>
__global__ void to_f32_kernel(const T* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    y[i] = to_float<T>(x[i]);
}

template <typename T>
__global__ void finish_output_kernel(const T* src, int64_t src_ld, T* y, int64_t tokens,
                                     int64_t out, const float* bias, Activation act,
                                     const T* residual) {
  const int64_t n = tokens * out;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    float v = to_float<T>(src[(i / out) * src_ld + i % out]);
    if (bias) v += bias[i % out];
    v = apply_activation(v, act);
    if (residual) v += to_float<T>(residual[i]);
    y[i] = from_float<T>(v);
  }
}

// One block per row of q: max |x| by a block reduction, then the quantized row. q is row-major
// [rows x ld_q] when plane_rows is 0, else k-planes [ld_q/16][plane_rows][16]; rows past `tokens`
// (planes only) are written as zeros and get no scale.
__global__ void quantize_rows_kernel(const __half* x, int64_t tokens, int64_t in, int8_t* q,
                                     int64_t ld_q, int64_t plane_rows, float* scales) {
  const int64_t row = blockIdx.x;
  const bool real = row < tokens;  // the same for the whole block: the barrier below is safe
  const __half* xr = x + row * in;
  float local = 0.0f;
  if (real)
    for (int64_t i = threadIdx.x; i < in; i += blockDim.x)
      local = fmaxf(local, fabsf(__half2float(xr[i])));
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    local = fmaxf(local, __shfl_xor_sync(0xffffffffu, local, offset));
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = local;
  __syncthreads();
  float max_abs = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) max_abs = fmaxf(max_abs, partial[w]);
  const float scale = max_abs / 127.0f;
  const float inverse = max_abs > 0.0f ? 127.0f / max_abs : 0.0f;
  if (real && threadIdx.x == 0) scales[row] = scale;
  for (int64_t i = threadIdx.x; i < ld_q; i += blockDim.x) {
    int v = 0;
    if (real && i < in) {
      v = __float2int_rn(__half2float(xr[i]) * inverse);
      v = v > 127 ? 127 : (v < -127 ? -127 : v);
    }
    const int64_t at = plane_rows ? (i / 16) * plane_rows * 16 + row * 16 + i % 16 : row * ld_q + i;
    q[at] = static_cast<int8_t>(v);
  }
}

__global__ void int8_epilogue_kernel(const int32_t* acc, int64_t ld_acc, const float* x_scale,
                                     const float* w_scale, const float* bias, Activation act,
                                     const __half* residual, __half* y, int64_t tokens,
                                     int64_t out) {
  const int64_t n = tokens * out;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / out, o = i % out;
    float v = static_cast<float>(acc[t * ld_acc + o]) * x_scale[t] * w_scale[o];
    if (bias) v += bias[o];
    v = apply_activation(v, act);
    if (residual) v += __half2float(residual[i]);
    y[i] = __float2half_rn(v);
  }
}

__global__ void copy_rows_padded_kernel(const unsigned char* src, int64_t src_ld,
                                        unsigned char* dst, int64_t dst_ld, int64_t rows,
                                        int64_t cols, int64_t dst_rows, int elem_bytes) {
  const int64_t row_bytes = dst_ld * elem_bytes;
  const int64_t n = dst_rows * row_bytes;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / row_bytes, b = i % row_bytes;
    const bool inside = r < rows && b < cols * elem_bytes;
    dst[i] = inside ? src[r * src_ld * elem_bytes + b] : 0;
  }
}

}  // namespace

void convert_from_f32(const float* x, void* y, Elem e, int64_t n, cudaStream_t stream) {
  if (e == Elem::f16)
    from_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, static_cast<__half*>(y), n);
  else
    from_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(y), n);
  check_cuda(cudaGetLastError(), "convert_from_f32 launch");
}

void convert_to_f32(const void* x, Elem e, float* y, int64_t n, cudaStream_t stream) {
  if (e == Elem::f16)
    to_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const __half*>(x), y, n);
  else
    to_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), y, n);
  check_cuda(cudaGetLastError(), "convert_to_f32 launch");
}

void finish_output(const void* src, int64_t src_ld, void* y, Elem e, int64_t tokens, int64_t out,
                   const float* bias, Activation act, const void* residual, cudaStream_t stream) {
  if (src == y && src_ld == out && !bias && act == Activation::none && !residual) return;
  const unsigned grid = grid_for(tokens * out);
  if (e == Elem::f16)
    finish_output_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const __half*>(src), src_ld,
                                                        static_cast<__half*>(y), tokens, out, bias,
                                                        act, static_cast<const __half*>(residual));
  else
    finish_output_kernel<<<grid, kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(src), src_ld, static_cast<__nv_bfloat16*>(y), tokens, out,
        bias, act, static_cast<const __nv_bfloat16*>(residual));
  check_cuda(cudaGetLastError(), "finish_output launch");
}

void quantize_rows(const void* x, int64_t tokens, int64_t in, int8_t* q, int64_t ld_q,
                   float* scales, cudaStream_t stream) {
  quantize_rows_kernel<<<static_cast<unsigned>(tokens), kThreads, 0, stream>>>(
      static_cast<const __half*>(x), tokens, in, q, ld_q, 0, scales);
  check_cuda(cudaGetLastError(), "quantize_rows launch");
}

void quantize_rows_planar(const void* x, int64_t tokens, int64_t in, int8_t* q, int64_t ld_q,
                          int64_t plane_rows, float* scales, cudaStream_t stream) {
  if (ld_q % 16 != 0 || ld_q < in || plane_rows < tokens)
    throw InvalidArgument("quantize_rows_planar: " + std::to_string(tokens) + " x " +
                          std::to_string(in) + " into planes of " + std::to_string(plane_rows) +
                          " rows x " + std::to_string(ld_q) +
                          " columns (expected columns a multiple of 16 and nothing cut off)");
  quantize_rows_kernel<<<static_cast<unsigned>(plane_rows), kThreads, 0, stream>>>(
      static_cast<const __half*>(x), tokens, in, q, ld_q, plane_rows, scales);
  check_cuda(cudaGetLastError(), "quantize_rows_planar launch");
}

void int8_epilogue(const int32_t* acc, int64_t ld_acc, const float* x_scale, const float* w_scale,
                   const float* bias, Activation act, const void* residual, void* y, int64_t tokens,
                   int64_t out, cudaStream_t stream) {
  int8_epilogue_kernel<<<grid_for(tokens * out), kThreads, 0, stream>>>(
      acc, ld_acc, x_scale, w_scale, bias, act, static_cast<const __half*>(residual),
      static_cast<__half*>(y), tokens, out);
  check_cuda(cudaGetLastError(), "int8_epilogue launch");
}

void copy_rows_padded(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                      int64_t cols, int64_t dst_rows, int elem_bytes, cudaStream_t stream) {
  copy_rows_padded_kernel<<<grid_for(dst_rows * dst_ld * elem_bytes), kThreads, 0, stream>>>(
      static_cast<const unsigned char*>(src), src_ld, static_cast<unsigned char*>(dst), dst_ld,
      rows, cols, dst_rows, elem_bytes);
  check_cuda(cudaGetLastError(), "copy_rows_padded launch");
}

}  // namespace sparq::gpu
