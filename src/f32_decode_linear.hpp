// An f32 or bf16 linear layer for decode steps (1..4 tokens per kernel call): weights in the f32
// decode layout (16x1 blocks, or 2:4 blocks of 16 x 4 on AVX-512; rows in vector lanes; bf16
// layers store bf16 values), activations used as given (bf16 layers round them, 2:4 pads them to
// whole blocks), groups of 16 rows spread over threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/f32_decode_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/f32_decode_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/threading.hpp"

namespace sparq {

class F32DecodeLinear final : public LinearKernel {
 public:
  // w: fp32 [out x in] (bf16: holding bf16 values; two_of_four: 2:4, isa avx512 or
  // reference), bias [out] or null.
  F32DecodeLinear(const float* w, const float* bias, int64_t out, int64_t in, bool bf16,
                  jit::PostOps post_ops, jit::Isa isa, PoolRef threads, bool two_of_four = false);

  // Any token count (more than 4 run in steps of 4, each reading all the weights).
  // y: fp32 [tokens x out], or bf16 when bf16_out.
  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  const sparse::F32DecodeWeights& weights() const { return weights_; }
  std::string kernel_name() const { return kernels_[0][0]->name(); }
  std::string name() const override { return kernel_name(); }
  std::string isa() const override { return jit::isa_name(kernels_[0][0]->key().isa); }
  int64_t packed_bytes() const override { return weights_.bytes(); }

 private:
  sparse::F32DecodeWeights weights_;
  std::shared_ptr<const jit::F32DecodeKernel> kernels_[4][2];  // [tokens - 1][residual]
  tbb::task_arena* arena_;
};

}  // namespace sparq
