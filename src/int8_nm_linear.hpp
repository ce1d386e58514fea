// An int8 2:4 linear layer for decode-sized calls: weights packed once, activations quantized per
// token into zero-padded rows, rows spread over threads; more than 4 tokens run in steps of 4,
// each reading all the weights. On AVX-512 VNNI: the JIT decode kernel (16 rows in the lanes,
// sparse/int8_nm_decode_pack.hpp, u8 activations); elsewhere the row kernel
// (sparse/int8_nm_pack.hpp, s8 activations), AVX2 or portable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_nm_decode_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "sparse/int8_nm_decode_pack.hpp"
#include "sparse/int8_nm_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8NmLinear final : public LinearKernel {
 public:
  // wq: s8 [out x in], 2:4; w_scale [out]; bias [out] or null; isa: the best available.
  Int8NmLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out, int64_t in,
               jit::PostOps post_ops, jit::Isa isa, PoolRef threads);

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  // y: fp32 [tokens x out], or s8 when y_scale > 0 (requantized), or bf16 when bf16_out;
  // residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  int64_t packed_bytes() const override {
    return jit_ ? decode_weights_.bytes() : weights_.bytes();
  }
  std::string kernel_name() const;
  std::string name() const override { return kernel_name(); }
  std::string isa() const override { return jit::isa_name(isa_); }

 private:
  void run_jit(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
               bool bf16_out) const;

  jit::Isa isa_;
  bool jit_;                                    // the AVX-512 decode kernel
  sparse::Int8NmWeights weights_;               // the row kernel's
  sparse::Int8NmDecodeWeights decode_weights_;  // the JIT kernel's
  // [tokens - 1][residual][int8 output]
  std::shared_ptr<const jit::Int8NmDecodeKernel> kernels_[sparse::kDecodeMaxTokens][2][2];
  jit::PostOps post_ops_;
  tbb::task_arena* arena_;
};

}  // namespace sparq
