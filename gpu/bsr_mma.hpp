// sparq's block-sparse kernel on tensor cores: y = act(x w^T + bias) + residual for a weight stored
// as BSR with 16x16, 16x32, 32x16 or 32x32 blocks (fp16 or bf16 values, fp32 accumulation).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "gpu/elementwise.hpp"

namespace sparq::gpu {

// Device pointers. row_ptr: block_rows + 1 offsets; col_idx: block column per stored block;
// values: R*C per stored block, row-major within the block, in the activation type `e`.
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

}  // namespace sparq::gpu
