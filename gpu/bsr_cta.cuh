// What sparq's BSR tensor-core kernels (bsr_mma.cu, bsr_int8_mma.cu) share: the CTA geometry (one
// block row of the weight x 64 tokens, four warps of 16 tokens), the epilogue that writes a CTA's
// tile, and the dispatch of a block shape to the kernel template compiled for it.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "gpu/activation.cuh"
#include "sparq/error.hpp"

namespace sparq::gpu {

constexpr int kBsrWarps = 4;
constexpr int kBsrTokensPerWarp = 16;
constexpr int kBsrTokensPerCta = kBsrWarps * kBsrTokensPerWarp;
constexpr int kBsrThreads = kBsrWarps * 32;
// The grid's y dimension holds at most 65535 token tiles.
constexpr int64_t kBsrMaxTokensPerLaunch = int64_t{65535} * kBsrTokensPerCta;

// Writes the CTA's tile of y (tokens t0.., outputs block_row*R..): act(value(t, r) + bias) +
// residual, each thread whole elements in turn; value(t, r) reads the accumulators the warps
// staged in shared memory (t the token within the tile, r the output within the block row).
template <int R, typename T, typename Value>
__device__ void write_bsr_tile(Value value, int64_t t0, int64_t block_row, int64_t tokens,
                               int64_t out, const float* bias, Activation act, const T* residual,
                               T* y) {
  for (int e = threadIdx.x; e < kBsrTokensPerCta * R; e += kBsrThreads) {
    const int t = e / R, r = e % R;
    const int64_t token = t0 + t, o = block_row * R + r;
    if (token >= tokens || o >= out) continue;
    float v = value(t, r, token, o);
    if (bias) v += bias[o];
    v = apply_activation(v, act);
    if (residual) v += to_float<T>(residual[token * out + o]);
    y[token * out + o] = from_float<T>(v);
  }
}

// Calls launch(R, C) with R and C as std::integral_constant for the 16/32 x 16/32 block shapes.
template <typename Launch>
void dispatch_block_shape(int rows, int cols, const char* kernel, Launch&& launch) {
  using k16 = std::integral_constant<int, 16>;
  using k32 = std::integral_constant<int, 32>;
  if (rows == 16 && cols == 16) return launch(k16{}, k16{});
  if (rows == 16 && cols == 32) return launch(k16{}, k32{});
  if (rows == 32 && cols == 16) return launch(k32{}, k16{});
  if (rows == 32 && cols == 32) return launch(k32{}, k32{});
  throw NotSupported(std::string(kernel) + ": block " + std::to_string(rows) + "x" +
                     std::to_string(cols) + " (expected 16x16, 16x32, 32x16 or 32x32)");
}

}  // namespace sparq::gpu
