// Dense layers on cuBLASLt: fp16 / bf16 (fp32 accumulation) and int8 (int32 accumulation, the
// activations quantized per token on the GPU, the weight per output channel, as on the CPU).
// The baseline sparse layers are measured against, and the fallback for shapes they cannot take.
#pragma once

#include <memory>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"

namespace sparq::gpu {

std::unique_ptr<GpuKernel> make_dense_kernel(int device, const float* weight, int64_t out,
                                             int64_t in, const float* bias, DType dtype,
                                             Activation act);

}  // namespace sparq::gpu
