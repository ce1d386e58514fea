// An int8 2:4 linear layer for decode-sized calls: weights packed once (sparse/int8_nm_pack.hpp),
// activations quantized per token into zero-padded s8 rows, rows spread over threads; more than
// 4 tokens run in steps of 4, each reading all the weights.
#pragma once

#include <cstdint>
#include <string>

#include "sparse/int8_nm_pack.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8NmLinear {
 public:
  // wq: s8 [out x in], 2:4; w_scale [out]; bias [out] or null. use_avx2: the vector kernel.
  Int8NmLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out, int64_t in,
               Activation activation, bool use_avx2, int threads);

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const;
  // y: fp32 [tokens x out], or s8 when y_scale > 0 (requantized), or bf16 when bf16_out;
  // residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const;

  const sparse::Int8NmWeights& weights() const { return weights_; }
  std::string kernel_name() const { return use_avx2_ ? "cpp-avx2:int8-2:4" : "cpp:int8-2:4"; }

 private:
  sparse::Int8NmWeights weights_;
  Activation activation_;
  bool use_avx2_;
  tbb::task_arena* arena_;
};

}  // namespace sparq
