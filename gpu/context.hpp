// Per-GPU library handles (created on first use, kept for the process), the current-device guard,
// and stream-ordered scratch memory for the layers' temporaries.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <cstdint>
#include <mutex>
#include <string>

#include "gpu/cuda_check.hpp"

namespace sparq::gpu {

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool restore_ = false;
};

struct Context {
  int device = 0;
  int sm = 0;
  cublasLtHandle_t blas_lt = nullptr;  // takes the stream per call
  cublasHandle_t blas = nullptr;       // cuBLAS and cuSPARSE keep the stream in the handle:
  cusparseHandle_t sparse = nullptr;   // use them through StreamLock

  static Context& get(int device);  // thread-safe; the handles live as long as the process

  // Holds the handles' lock, points cuBLAS and cuSPARSE at `stream` and back at the null stream
  // when it goes (the caller's stream may be destroyed after the call).
  class StreamLock {
   public:
    StreamLock(Context& context, cudaStream_t stream);
    ~StreamLock();
    StreamLock(const StreamLock&) = delete;
    StreamLock& operator=(const StreamLock&) = delete;

   private:
    Context& context_;
    std::lock_guard<std::mutex> lock_;
  };

 private:
  std::mutex stream_mutex_;
};

// Whether the GPU has stream-ordered memory pools (cudaMallocAsync); some virtualized GPUs do not.
bool memory_pools_supported(int device);

// cudaMallocAsync / cudaFreeAsync on one stream: memory for one call's temporaries that is
// recycled by the driver's pool, so per-call allocation stays cheap. On a GPU without memory
// pools: cudaMalloc, and cudaFree after waiting for the stream (slower; not capturable).
class StreamScratch {
 public:
  StreamScratch(size_t bytes, cudaStream_t stream);
  ~StreamScratch();
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool pooled_ = true;
};

// Whether `stream` is being captured into a CUDA graph, where nothing may allocate with
// cudaMalloc, synchronize or time (a layer's first call at a new token count does); for the
// legacy stream, whether a blocking stream is.
bool is_capturing(cudaStream_t stream);

inline int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

}  // namespace sparq::gpu
