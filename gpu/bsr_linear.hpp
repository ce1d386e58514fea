// A block-sparse layer on sparq's tensor-core BSR kernels (bsr_mma.cu for fp16 / bf16,
// bsr_int8_mma.cu for int8 with fp16 activations).
#pragma once

#include <memory>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"
#include "sparse/bsr.hpp"

namespace sparq::gpu {

std::unique_ptr<GpuKernel> make_bsr_kernel(const sparse::Bsr& w, const float* bias, DType dtype,
                                           Activation act);

}  // namespace sparq::gpu
