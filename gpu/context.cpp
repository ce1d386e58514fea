#include "gpu/context.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace sparq::gpu {

DeviceGuard::DeviceGuard(int device) {
  check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
  if (previous_ != device) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    restore_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (restore_) cudaSetDevice(previous_);
}

Context& Context::get(int device) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<Context>> contexts;
  std::lock_guard lock(mutex);
  auto& slot = contexts[device];
  if (!slot) {
    DeviceGuard guard(device);
    auto c = std::make_unique<Context>();
    c->device = device;
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    c->sm = prop.major * 10 + prop.minor;
    // Keep freed stream-ordered scratch in the pool: with the default threshold (0) every
    // synchronization returns it to the driver and the next call maps it again, which costs more
    // than small kernels and would skew timings (auto's choice, sparq-bench) against the kernels
    // that need workspace.
    if (memory_pools_supported(device)) {
      cudaMemPool_t pool = nullptr;
      check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
      uint64_t keep_all = UINT64_MAX;
      check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all),
                 "cudaMemPoolSetAttribute(ReleaseThreshold)");
    }
    check_cublas(cublasLtCreate(&c->blas_lt), "cublasLtCreate");
    check_cublas(cublasCreate(&c->blas), "cublasCreate");
    check_cusparse(cusparseCreate(&c->sparse), "cusparseCreate");
    slot = std::move(c);  // never destroyed: layers may outlive any scope
  }
  return *slot;
}

Context::StreamLock::StreamLock(Context& context, cudaStream_t stream)
    : context_(context), lock_(context.stream_mutex_) {
  check_cublas(cublasSetStream(context.blas, stream), "cublasSetStream");
  check_cusparse(cusparseSetStream(context.sparse, stream), "cusparseSetStream");
}

Context::StreamLock::~StreamLock() {
  cublasSetStream(context_.blas, nullptr);
  cusparseSetStream(context_.sparse, nullptr);
}

bool memory_pools_supported(int device) {
  // Asked on every scratch allocation: one lock-free read per call once known (0 unknown, 1 yes,
  // 2 no); two threads asking at once both query, with the same answer.
  constexpr int kKnownDevices = 64;
  static std::atomic<int> known[kKnownDevices] = {};
  if (device >= 0 && device < kKnownDevices)
    if (const int k = known[device].load(std::memory_order_relaxed); k != 0) return k == 1;
  int supported = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) {
    (void)cudaGetLastError();
    supported = 0;
  }
  if (device >= 0 && device < kKnownDevices)
    known[device].store(supported ? 1 : 2, std::memory_order_relaxed);
  return supported != 0;
}

StreamScratch::StreamScratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
  if (bytes == 0) return;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  pooled_ = memory_pools_supported(device);
  if (pooled_)
    check_cuda(cudaMallocAsync(&data_, bytes, stream), "cudaMallocAsync");
  else
    check_cuda(cudaMalloc(&data_, bytes),
               "cudaMalloc (this GPU has no stream-ordered memory pools)");
}

StreamScratch::~StreamScratch() {
  if (!data_) return;
  if (pooled_) {
    cudaFreeAsync(data_, stream_);
  } else {  // the stream's queued work may still use the memory
    cudaStreamSynchronize(stream_);
    cudaFree(data_);
  }
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t e = cudaStreamIsCapturing(stream, &status);
  if (e == cudaSuccess) return status != cudaStreamCaptureStatusNone;
  (void)cudaGetLastError();  // not sticky: keep it from being blamed on a later launch
  return e == cudaErrorStreamCaptureImplicit;
}

}  // namespace sparq::gpu
