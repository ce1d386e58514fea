// An int8 linear layer for decode steps (1..4 tokens): weights packed in the decode layout
// (16x1 blocks, rows in vector lanes), activations quantized per token and widened to s16,
// groups of 16 rows spread over threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_decode_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8DecodeLinear final : public LinearKernel {
 public:
  // Pre-quantized weights: wq s8 [out x in], w_scale [out], bias [out] or null; in <= 65536.
  Int8DecodeLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                   int64_t in, jit::PostOps post_ops, jit::Isa isa, PoolRef threads);

  // Any token count; more than 4 run in steps of 4, each reading all the weights.
  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override {
    return q.form == QuantizedInput::Impl::Form::decode_s16 && q.in == weights_.in;
  }
  // y: fp32 [tokens x out], or s8 when y_scale > 0 (requantized), or bf16 when bf16_out;
  // residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  const sparse::Int8DecodeWeights& weights() const { return weights_; }
  std::string kernel_name() const { return kernels_[0][0][0]->name(); }
  std::string name() const override { return kernel_name(); }
  std::string isa() const override { return jit::isa_name(kernels_[0][0][0]->key().isa); }
  int64_t packed_bytes() const override { return weights_.bytes(); }

 private:
  sparse::Int8DecodeWeights weights_;
  // [tokens - 1][residual][int8 output]
  std::shared_ptr<const jit::Int8DecodeKernel> kernels_[sparse::kDecodeMaxTokens][2][2];
  tbb::task_arena* arena_;
};

}  // namespace sparq
