// What the CUDA backend can do on this machine: whether sparq was built with it, whether it loaded,
// and the GPUs it found.
//
//   const sparq::CudaStatus s = sparq::cuda_status();
//   if (!s.usable) std::cerr << s.message;          // e.g. "no CUDA driver: ..."
#pragma once

#include <string>
#include <vector>

#include "sparq/types.hpp"

namespace sparq {

struct CudaGpu {
  int index = 0;
  std::string name;        // e.g. "NVIDIA H100 80GB HBM3"
  int sm = 0;              // compute capability x 10, e.g. 90
  bool supported = false;  // sm >= 80 (sparse tensor cores)
  long long memory_bytes = 0;
};

struct CudaStatus {
  bool built = false;        // libsparq was built with the CUDA backend
  bool usable = false;       // the backend loaded, a driver answered and a supported GPU is present
  std::string message;       // why not usable, or a one-line summary of what is there
  std::string backend_path;  // the libsparq_cuda.so that was loaded
  std::string cusparselt;    // cuSPARSELt version, or why the 2:4 path is compiled out
  std::vector<CudaGpu> gpus;
};

// Loads the backend on first call (thread-safe; the result is kept for the process).
CudaStatus cuda_status();

}  // namespace sparq
