// The boundary between libsparq and its CUDA backend (libsparq_cuda.so, built from gpu/ when the
// CUDA toolkit is found). libsparq loads the backend with dlopen the first time a layer asks for
// Device::cuda, so the CPU library never needs CUDA at run time. Plain C++ types only: no CUDA
// header is included on this side.
#pragma once

#include <cstdint>
#include <memory>

#include "sparq/device.hpp"
#include "sparq/linear.hpp"

namespace sparq::gpu {

// Bumped whenever this interface changes; a backend of another version is refused by name.
constexpr int kBackendAbi = 1;

// One linear layer packed on a GPU.
class DeviceLinear {
 public:
  virtual ~DeviceLinear() = default;
  virtual LinearInfo info() const = 0;
  // Host fp32 pointers: copied to the device, converted, run, synchronized and copied back.
  virtual void forward_host(const float* x, int64_t tokens, float* y,
                            const float* residual) const = 0;
  // Device pointers in the layer's activation type (see SparseLinear::forward_device).
  virtual void forward_device(const void* x, int64_t tokens, void* y, const void* residual,
                              void* stream) const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual CudaStatus status() const = 0;
  // Arguments are validated by SparseLinear::pack before this is called.
  virtual std::unique_ptr<DeviceLinear> pack(const float* weight, int64_t out, int64_t in,
                                             const float* bias,
                                             const LinearOptions& options) const = 0;
};

}  // namespace sparq::gpu

// The one symbol libsparq_cuda.so exports for libsparq. Returns null when `abi` differs from the
// backend's kBackendAbi.
extern "C" sparq::gpu::Backend* sparq_cuda_backend(int abi);
