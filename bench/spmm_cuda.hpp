// sparq-bench spmm --device cuda: a sparse layer on the GPU against cuBLASLt dense (sparq's dense
// CUDA layer), same shape and dtype, interleaved, timed with CUDA events on one stream.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/spmm_case.hpp"

namespace sparq::bench {

struct CudaResult {
  SpmmSpec spec;
  Device device;
  double sparse_us = 0, dense_us = 0, speedup = 0;
  // max |y - y_ref| / max |y_ref| against the fp32 reference, over up to 32 tokens (all of a small
  // case; else the first 8, the last 8 and 16 between)
  double sparse_error = 0, dense_error = 0;
  int reps = 0;
  std::string kernel, dense_kernel, reason, gpu;
};

// Throws NotSupported when this sparq-bench was built without CUDA or no GPU is usable.
CudaResult run_cuda_case(const SpmmSpec& spec, const Device& device, int warmup, int min_reps,
                         double min_seconds);
nlohmann::json to_json(const CudaResult& r);

}  // namespace sparq::bench
