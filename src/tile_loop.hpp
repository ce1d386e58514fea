// The driver shared by the block-sparse layers (int8, f32): runs a tile kernel over every slice of
// tokens and every block of row groups, spread over a oneTBB arena, staging the tiles that run
// short (tokens past the end of the last slice, rows past the end of the last group).
#pragma once

#include <cstdint>

#include "jit/block_tile.hpp"
#include "src/threading.hpp"

namespace sparq {

struct TileLoop {
  const jit::BlockTileKernel* kernel = nullptr;
  tbb::task_arena* arena = nullptr;
  // The packed weight.
  int64_t out = 0;
  int64_t groups = 0;                    // ceil(out / 4)
  const int64_t* group_begin = nullptr;  // groups + 1 entry indices
  const uint8_t* entries = nullptr;
  const float* w_scale = nullptr;         // per row, padded to 4 rows per group; int8 only
  const float* bias = nullptr;            // per row, padded likewise (zeros without a bias)
  const int32_t* compensation = nullptr;  // per row, padded likewise; int8 only
  // The activations in the kernel's slice-major layout, and (int8) the scales in lane order.
  const uint8_t* x = nullptr;
  int64_t slice_bytes = 0;
  const float* x_scales = nullptr;
  int64_t tokens = 0;
  // y [tokens x out] of y_element_bytes each (4: fp32, 1: int8 with inv_y_scale), or bf16 (2
  // bytes: the kernel's fp32 tiles are converted as they leave the staging block).
  void* y = nullptr;
  int y_element_bytes = 4;
  bool bf16_output = false;
  float inv_y_scale = 0.0f;
  const float* residual = nullptr;  // fp32 [tokens x out] or null
};

void run_tiles(const TileLoop& loop);

}  // namespace sparq
