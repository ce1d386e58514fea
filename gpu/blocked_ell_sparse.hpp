// Block-sparse layers on cuSPARSE's Blocked-ELL SpMM (fp16 / bf16 values, fp32 compute): the
// library baseline measured beside sparq's own BSR tensor-core kernel.
#pragma once

#include <memory>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"
#include "sparse/bsr.hpp"

namespace sparq::gpu {

// w must have square blocks (Blocked-ELL's only shape).
std::unique_ptr<GpuKernel> make_blocked_ell_kernel(int device, const sparse::Bsr& w,
                                                   const float* bias, DType dtype, Activation act);

}  // namespace sparq::gpu
