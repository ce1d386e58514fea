// A packed GPU kernel wrapped as the DeviceLinear libsparq's SparseLinear holds.
#pragma once

#include <memory>

#include "gpu/backend.hpp"
#include "gpu/gpu_kernel.hpp"

namespace sparq::gpu {

std::unique_ptr<DeviceLinear> make_cuda_linear(int device, std::unique_ptr<GpuKernel> kernel,
                                               LinearInfo info, int64_t out, int64_t in,
                                               DType dtype);

}  // namespace sparq::gpu
