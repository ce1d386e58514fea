// 2:4 layers on sparse tensor cores through cuSPARSELt: fp16 and bf16 (fp32 accumulation) and int8
// (int32 accumulation, per-token activation scales and per-channel weight scales applied in
// sparq's epilogue). Compiled only when cuSPARSELt was found (SPARQ_HAVE_CUSPARSELT).
#pragma once

#include <memory>
#include <string>

#include "gpu/gpu_kernel.hpp"
#include "sparq/types.hpp"

namespace sparq::gpu {

// Null when sparq was built without cuSPARSELt; `why` then says so.
std::unique_ptr<GpuKernel> make_nm_kernel(int device, const float* weight, int64_t out, int64_t in,
                                          const float* bias, DType dtype, Activation act,
                                          std::string& why);

// "cuSPARSELt 0.10.0", or why the 2:4 path is compiled out.
std::string cusparselt_description();

}  // namespace sparq::gpu
