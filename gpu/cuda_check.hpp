// Turns CUDA runtime / cuBLASLt / cuSPARSE status codes into sparq errors that name the call.
#pragma once

#include <cublasLt.h>
#include <cublas_api.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <string>

#include "sparq/error.hpp"

namespace sparq::gpu {

// Errors of the GPU libraries at run time (out of memory, a launch failure, a driver problem).
class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& what) : std::runtime_error("sparq: " + what) {}
};

inline void check_cuda(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw CudaError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
}

inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw CudaError(std::string(call) + " failed: " + cublasGetStatusName(status) + " (" +
                    cublasGetStatusString(status) + ")");
}

inline void check_cusparse(cusparseStatus_t status, const char* call) {
  if (status != CUSPARSE_STATUS_SUCCESS)
    throw CudaError(std::string(call) + " failed: " + cusparseGetErrorName(status) + " (" +
                    cusparseGetErrorString(status) + ")");
}

}  // namespace sparq::gpu
