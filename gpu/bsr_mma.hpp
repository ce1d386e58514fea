// sparq's block-sparse kernels on tensor cores: y = act(x w^T + bias) + residual for a weight
// stored as BSR with 16x16, 16x32, 32x16 or 32x32 blocks: fp16 or bf16 values with fp32
// accumulation (bsr_mma.cu), and int8 with int32 accumulation and per-token / per-channel scales
// (bsr_int8_mma.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/elementwise.hpp"

namespace sparq::gpu {

// Device pointers. row_ptr: block_rows + 1 offsets; col_idx: block column per stored block;
// values: R*C per stored block, row-major within the block in the activation type `e` (16-bit
// kernels), or int8 in k-panels [C/16][R][16] (int8 kernel).
struct BsrDevice {
  int64_t out = 0, in = 0;
  int block_rows_of = 16, block_cols_of = 16;  // R, C
  int64_t block_rows = 0;
  const int64_t* row_ptr = nullptr;
  const int32_t* col_idx = nullptr;
  const void* values = nullptr;
};

bool bsr_mma_supports(int rows, int cols);

// x, residual, y: [tokens x in] / [tokens x out] in `e`, row-major; bias fp32 [out] or null.
void bsr_mma_forward(const BsrDevice& w, Elem e, const void* x, int64_t tokens, const float* bias,
                     Activation act, const void* residual, void* y, cudaStream_t stream);

// int8: q holds the activations quantized per token in k-planes [ld_q/16][plane_tokens][16]
// (quantize_rows_planar; ld_q = in rounded up to 32 covers every block), x_scale one scale per
// token, w_scale one per output channel; residual and y fp16. At most bsr_int8_max_tokens() tokens
// per call, plane_tokens = bsr_int8_plane_tokens(tokens) (a multiple of 64), q 32-byte aligned.
int64_t bsr_int8_max_tokens();
int64_t bsr_int8_plane_tokens(int64_t tokens);
void bsr_int8_forward(const BsrDevice& w, const float* w_scale, const int8_t* q, int64_t ld_q,
                      int64_t plane_tokens, const float* x_scale, int64_t tokens, const float* bias,
                      Activation act, const void* residual, void* y, cudaStream_t stream);

}  // namespace sparq::gpu
