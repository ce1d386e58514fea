#include "src/cuda_backend.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "sparq/error.hpp"

#ifndef SPARQ_CUDA_BUILT
#define SPARQ_CUDA_BUILT 0
#endif

namespace sparq {
namespace {

constexpr const char* kBackendFile = "libsparq_cuda.so";

// The backend is installed (and built) beside libsparq.so.
std::string default_backend_path() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cuda_status), &info) != 0 && info.dli_fname != nullptr)
    return (std::filesystem::path(info.dli_fname).parent_path() / kBackendFile).string();
  return kBackendFile;
}

struct Loaded {
  CudaStatus status;
  gpu::Backend* backend = nullptr;
};

Loaded load_once() {
  Loaded l;
  const char* override_path = std::getenv("SPARQ_CUDA_BACKEND");
  if (!SPARQ_CUDA_BUILT && (override_path == nullptr || *override_path == '\0')) {
    l.status.message =
        "sparq was built without the CUDA backend (configure with -DSPARQ_WITH_CUDA=ON on a "
        "machine with the CUDA toolkit)";
    return l;
  }
  const std::string path =
      override_path && *override_path ? std::string(override_path) : default_backend_path();
  l.status = load_cuda_backend(path, &l.backend);
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load_once();  // thread-safe initialization
  return l;
}

}  // namespace

CudaStatus load_cuda_backend(const std::string& path, gpu::Backend** backend) {
  *backend = nullptr;
  CudaStatus status;
  status.built = SPARQ_CUDA_BUILT != 0;
  status.backend_path = path;
  // Never closed: layers and the backend's handles live until the process ends.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    status.message = "could not load the CUDA backend " + path + ": " + (why ? why : "?");
    return status;
  }
  using Entry = gpu::Backend* (*)(int);
  auto entry = reinterpret_cast<Entry>(dlsym(handle, "sparq_cuda_backend"));
  if (entry == nullptr) {
    status.message = path + " is not a sparq CUDA backend (no symbol sparq_cuda_backend)";
    return status;
  }
  gpu::Backend* b = entry(gpu::kBackendAbi);
  if (b == nullptr) {
    status.message = path + " was built for another version of libsparq (backend interface " +
                     std::to_string(gpu::kBackendAbi) + " expected); rebuild both together";
    return status;
  }
  status = b->status();
  status.built = true;
  status.backend_path = path;
  if (status.usable) *backend = b;
  return status;
}

CudaStatus cuda_status() { return loaded().status; }

void check_device_request(const Device& device, DType dtype, const std::string& who) {
  if (device.kind != Device::Kind::cpu && device.kind != Device::Kind::cuda)
    throw InvalidArgument(who + ": unknown device kind value " +
                          std::to_string(static_cast<int>(device.kind)));
  if (device.index < 0)
    throw InvalidArgument(who + ": device index must be >= 0, got " + std::to_string(device.index));
  if (device.kind == Device::Kind::cpu && dtype == DType::f16)
    throw NotSupported(who +
                       ": dtype f16 runs on Device::cuda only; on the CPU use f32, bf16 or int8");
  if (device.kind == Device::Kind::cuda && dtype == DType::f32)
    throw NotSupported(who + ": dtype f32 is not supported on " + device.to_string() +
                       " (the GPU kernels run on tensor cores); use f16, bf16 or int8");
}

gpu::Backend& cuda_backend_for(const Device& device) {
  const Loaded& l = loaded();
  const std::string asked = "device " + device.to_string() + " requested";
  if (l.backend == nullptr)
    throw NotSupported(asked + " but CUDA is not usable: " + l.status.message);
  const auto& gpus = l.status.gpus;
  if (device.index >= static_cast<int>(gpus.size()))
    throw NotSupported(asked + " but only " + std::to_string(gpus.size()) +
                       " CUDA device(s) are visible");
  const CudaGpu& g = gpus[static_cast<size_t>(device.index)];
  if (!g.supported)
    throw NotSupported(asked + ": " + g.name + " is sm_" + std::to_string(g.sm) +
                       "; sparq's CUDA kernels need sm_80 or newer (A100, H100, ...)");
  return *l.backend;
}

}  // namespace sparq
