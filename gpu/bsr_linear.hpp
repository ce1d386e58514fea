// A block-sparse layer on sparq's tensor-core BSR kernel (bsr_mma.cu).
#pragma once

#include <memory>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"
#include "sparse/bsr.hpp"

namespace sparq::gpu {

std::unique_ptr<GpuKernel> make_bsr_kernel(const sparse::Bsr& w, const float* bias, DType dtype,
                                           Activation act);

}  // namespace sparq::gpu
