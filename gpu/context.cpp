#include "gpu/context.hpp"

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
    cudaMemPool_t pool = nullptr;
    check_cuda(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
    uint64_t keep_all = UINT64_MAX;
    check_cuda(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all),
               "cudaMemPoolSetAttribute(ReleaseThreshold)");
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

StreamScratch::StreamScratch(size_t bytes, cudaStream_t stream) : stream_(stream) {
  if (bytes > 0) check_cuda(cudaMallocAsync(&data_, bytes, stream), "cudaMallocAsync");
}

StreamScratch::~StreamScratch() {
  if (data_) cudaFreeAsync(data_, stream_);
}

bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t e = cudaStreamIsCapturing(stream, &status);
  if (e == cudaSuccess) return status != cudaStreamCaptureStatusNone;
  (void)cudaGetLastError();  // not sticky: keep it from being blamed on a later launch
  return e == cudaErrorStreamCaptureImplicit;
}

}  // namespace sparq::gpu
