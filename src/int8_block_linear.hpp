// An int8 linear layer on the 4x1 block-sparse tile kernels: weights packed once, activations
// quantized per call, tiles of (4 rows x one 64-token chunk) spread over threads by row group. On
// AVX-512 VNNI a call's last 1..16 tokens (1..32 with VBMI) run on 16-token tiles instead (a
// 64-token tile costs the same at 1 and at 64 tokens).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_block_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/int8_block_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

// x fp32 [tokens x in] quantized into an int8 block layout's 64-token chunks on the arena's
// threads (q.form block_layout).
void quantize_block_layout(const float* x, int64_t tokens, int64_t in, sparse::Int8Layout layout,
                           tbb::task_arena& arena, QuantizedInput::Impl& q);

class Int8BlockLinear final : public LinearKernel {
 public:
  // Pre-quantized weights: wq s8 [out x in], w_scale [out], bias [out] or null.
  Int8BlockLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                  int64_t in, jit::PostOps post_ops, jit::Isa isa, PoolRef threads);

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  // y: fp32 [tokens x out], or s8 when y_scale > 0 (requantized), or bf16 when bf16_out;
  // residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  const sparse::Int8BlockWeights& weights() const { return weights_; }
  std::string kernel_name() const { return kernels_[0][0]->name(); }
  std::string name() const override { return kernel_name(); }
  std::string isa() const override { return jit::isa_name(kernels_[0][0]->key().isa); }
  int64_t packed_bytes() const override { return weights_.bytes(); }
  sparse::Int8Layout layout() const { return weights_.layout; }

 private:
  enum Output { kF32Out, kS8Out, kBf16Out };
  sparse::Int8BlockWeights weights_;
  std::shared_ptr<const jit::Int8BlockKernel> kernels_[2][3];  // [residual][Output]
  // avx512_vnni: the 16-token kernels that run a call's last tokens (null elsewhere).
  std::shared_ptr<const jit::Int8BlockKernel> quarter_kernels_[2][3];
  tbb::task_arena* arena_;
};

}  // namespace sparq
