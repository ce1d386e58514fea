// An f32 (or bf16-rounded) linear layer on the 4x1 block-sparse tile kernels: weights packed
// once, activations laid out slice-major per call, tiles spread over threads by row group.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/f32_block_kernel.hpp"
#include "sparse/f32_block_pack.hpp"
#include "src/threading.hpp"

namespace sparq {

class F32BlockLinear {
 public:
  // w: fp32 [out x in], bias [out] or null. round_inputs_to_bf16: activations are rounded to bf16
  // when laid out (the weights must already hold bf16 values): bf16 semantics on fp32 FMAs.
  F32BlockLinear(const float* w, const float* bias, int64_t out, int64_t in, Activation activation,
                 jit::Isa isa, int threads, bool round_inputs_to_bf16);

  // x: fp32 [tokens x in]; y: fp32 [tokens x out]; residual fp32 [tokens x out] or null.
  void run(const float* x, int64_t tokens, float* y, const float* residual) const;

  const sparse::F32BlockWeights& weights() const { return weights_; }
  std::string kernel_name() const { return kernels_[0]->name(); }

 private:
  sparse::F32BlockWeights weights_;
  std::shared_ptr<const jit::F32BlockKernel> kernels_[2];  // [residual]
  tbb::task_arena* arena_;
  bool round_inputs_to_bf16_;
};

}  // namespace sparq
