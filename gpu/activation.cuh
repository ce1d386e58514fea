// sparq's activations on the device, with the same definitions as the CPU kernels (types.hpp).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "sparq/types.hpp"

namespace sparq::gpu {

__device__ __forceinline__ float apply_activation(float v, Activation act) {
  switch (act) {
    case Activation::none:
      return v;
    case Activation::relu:
      return v > 0.0f ? v : 0.0f;
    case Activation::gelu_tanh: {
      const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.0f + tanhf(inner));
    }
    case Activation::gelu_erf:
      return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
    case Activation::silu:
      return v / (1.0f + expf(-v));
  }
  return v;
}

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<__half>(__half v) {
  return __half2float(v);
}
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace sparq::gpu
