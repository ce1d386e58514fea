// The small GPU kernels around the matrix multiplies: conversions, per-token int8 quantization,
// and the epilogues the libraries cannot fuse (sparq's activations after the bias, the residual
// after the activation). Host-side launchers; the kernels live in elementwise.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "sparq/types.hpp"

namespace sparq::gpu {

// How activations are stored on the device.
enum class Elem { f16, bf16 };
inline Elem activation_elem(DType dtype) { return dtype == DType::bf16 ? Elem::bf16 : Elem::f16; }
inline const char* elem_name(Elem e) { return e == Elem::bf16 ? "bf16" : "f16"; }

void convert_from_f32(const float* x, void* y, Elem e, int64_t n, cudaStream_t stream);
void convert_to_f32(const void* x, Elem e, float* y, int64_t n, cudaStream_t stream);

// y [tokens x out] = act(src + bias) + residual, src [tokens x src_ld] (a library's padded
// output; src == y with src_ld == out works in place). bias (fp32 [out]) and residual may be null.
void finish_output(const void* src, int64_t src_ld, void* y, Elem e, int64_t tokens, int64_t out,
                   const float* bias, Activation act, const void* residual, cudaStream_t stream);

// x: fp16 [tokens x in] -> q: int8 [tokens x ld_q] (columns past `in` zeroed), scale per token:
// max |x| / 127 (0 for an all-zero row), q = round-half-even(x / scale), as the CPU layers do.
void quantize_rows(const void* x, int64_t tokens, int64_t in, int8_t* q, int64_t ld_q,
                   float* scales, cudaStream_t stream);

// The same quantization into k-planes [ld_q/16][plane_rows][16] (the layout of the int8 BSR
// kernel, bsr_mma.hpp): element (t, k) at (k / 16) * plane_rows * 16 + t * 16 + k % 16; rows past
// `tokens` and columns past `in` are zero. ld_q % 16 == 0, plane_rows >= tokens.
void quantize_rows_planar(const void* x, int64_t tokens, int64_t in, int8_t* q, int64_t ld_q,
                          int64_t plane_rows, float* scales, cudaStream_t stream);

// y (fp16 [tokens x out]) = act(acc * x_scale[token] * w_scale[out] + bias) + residual, with acc
// int32 [tokens x ld_acc].
void int8_epilogue(const int32_t* acc, int64_t ld_acc, const float* x_scale, const float* w_scale,
                   const float* bias, Activation act, const void* residual, void* y, int64_t tokens,
                   int64_t out, cudaStream_t stream);

// Copies rows of `cols` elements between buffers of different row strides (bytes per element:
// elem_bytes), zero-filling destination columns past `cols`. For padding to library alignments.
void copy_rows_padded(const void* src, int64_t src_ld, void* dst, int64_t dst_ld, int64_t rows,
                      int64_t cols, int64_t dst_rows, int elem_bytes, cudaStream_t stream);

}  // namespace sparq::gpu
