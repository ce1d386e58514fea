// The one place sparq talks to oneDNN (2.6): dense matmul primitives for the dense layers and the
// dense baselines of the benchmark. y[tokens x out] = x[tokens x in] * w^T, with fp32 output.
#pragma once

#include <cstdint>
#include <memory>

#include "sparq/types.hpp"

namespace sparq {

class DnnlMatmul {
 public:
  enum class Kind {
    f32,   // fp32 x, fp32 w
    s8s8,  // s8 x (per-token scales), s8 w (per-channel scales), s32 accumulate
  };
  // Builds the primitive for exactly `tokens` rows. w: fp32 [out x in] (f32) or s8 [out x in]
  // (s8s8, with w_scale [out]); bias [out] or null; the activation runs after the bias.
  DnnlMatmul(Kind kind, int64_t tokens, int64_t out, int64_t in, const void* w,
             const float* w_scale, const float* bias, Activation activation, int threads);
  ~DnnlMatmul();
  DnnlMatmul(DnnlMatmul&&) noexcept;

  // f32: x is fp32 [tokens x in]. s8s8: x is s8 [tokens x in] and x_scale [tokens] multiplies
  // each output row (a binary post-op), so y = float(acc) * x_scale[t] * w_scale[o] + bias[o].
  void run(const void* x, const float* x_scale, float* y) const;
  const char* implementation() const;  // oneDNN's name for the kernel it picked

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq
