// Finds and loads sparq's CUDA backend (libsparq_cuda.so) at run time.
#pragma once

#include <string>

#include "gpu/backend.hpp"
#include "sparq/device.hpp"

namespace sparq {

// The device and dtype rules every entry point applies before anything is loaded: a known device
// kind, index >= 0, f16 on cuda only, f32 not on cuda. `who` starts the messages.
void check_device_request(const Device& device, DType dtype, const std::string& who);

// The loaded backend, checked for `device`: throws NotSupported naming what is missing (a build
// without CUDA, the backend file, the driver, the GPU index, an architecture below sm_80).
gpu::Backend& cuda_backend_for(const Device& device);

// Loads the backend at `path` (no caching; what cuda_status does once). For tests and diagnostics.
CudaStatus load_cuda_backend(const std::string& path, gpu::Backend** backend);

}  // namespace sparq
