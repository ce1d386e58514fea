// A block-sparse layer on sparq's tensor-core BSR kernels (bsr_mma.cu for fp16 / bf16,
// bsr_int8_mma.cu for int8 with fp16 activations).
#pragma once

#include <memory>
#include <vector>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"
#include "sparse/bsr.hpp"

namespace sparq::gpu {

// The int8 kernel's weight: quantized per output channel exactly as the CPU layers do (over the
// whole row), each stored block rearranged into k-panels [C/16][R][16] (element (r, c) of block b
// at b*R*C + (c/16)*R*16 + r*16 + c%16; zero past the last row and column).
struct Int8Panels {
  std::vector<int8_t> panels;
  std::vector<float> scale;  // per output channel
};
Int8Panels quantize_to_panels(const sparse::Bsr& w);

std::unique_ptr<GpuKernel> make_bsr_kernel(const sparse::Bsr& w, const float* bias, DType dtype,
                                           Activation act);

}  // namespace sparq::gpu
