// An int8 2:4 linear layer for prefill-sized calls on AVX-512 VNNI
// (jit/int8_nm_prefill_kernel.hpp): weights packed once (sparse/int8_nm_prefill_pack.hpp),
// activations quantized per token into the kernel's [windows][tokens][8] u8 layout, and per thread
// a contiguous range of group pairs, in blocks whose weights stay in L2 while every 8-token tile
// runs over them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_nm_prefill_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/int8_nm_prefill_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8NmPrefillLinear final : public LinearKernel {
 public:
  // wq: s8 [out x in], 2:4 (InvalidArgument otherwise); w_scale [out]; bias [out] or null.
  // NotSupported where AVX-512 VNNI code cannot run.
  Int8NmPrefillLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                      int64_t in, jit::PostOps post_ops, PoolRef threads);

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  // y: fp32 [tokens x out], or s8 when y_scale > 0, or bf16 when bf16_out; residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  int64_t packed_bytes() const override { return weights_.bytes(); }
  std::string name() const override { return jit::Int8NmPrefillKernel::name(); }
  std::string isa() const override { return "avx512_vnni"; }
  const sparse::Int8NmPrefillWeights& weights() const { return weights_; }

 private:
  sparse::Int8NmPrefillWeights weights_;
  // [tokens - 1][residual][int8 output]
  std::shared_ptr<const jit::Int8NmPrefillKernel> kernels_[jit::kNmPrefillTileTokens][2][2];
  tbb::task_arena* arena_;
};

}  // namespace sparq
