// What every GPU linear kernel of sparq offers the layer that owns it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace sparq::gpu {

class GpuKernel {
 public:
  virtual ~GpuKernel() = default;
  // x [tokens x in], y and residual [tokens x out]: device memory in the layer's activation type.
  // Asynchronous on `stream`.
  virtual void run(const void* x, int64_t tokens, void* y, const void* residual,
                   cudaStream_t stream) const = 0;
  virtual std::string name() const = 0;  // e.g. "cusparselt:f16-2:4"
  virtual int64_t bytes() const = 0;     // device bytes held by the packed weight
};

}  // namespace sparq::gpu
