// An f32 or bf16 linear layer on the sparse tile kernels, 4x1 block-sparse or 2:4: weights
// packed once, activations laid out slice-major per call, tiles spread over threads by row
// group. bf16 4x1 layers run vdpbf16ps on bf16-stored weights where the CPU has AVX512_BF16
// (layout bf16_4x1), elsewhere fp32 FMAs on bf16-rounded values.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/f32_block_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/f32_block_pack.hpp"
#include "sparse/f32_nm_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/threading.hpp"

namespace sparq {

class F32TileLinear final : public LinearKernel {
 public:
  // w: fp32 [out x in] (for n2_m4: 2:4, else InvalidArgument), bias [out] or null.
  // round_inputs_to_bf16: a bf16 layer (the weights must already hold bf16 values): bf16_4x1 when
  // requested and available (AVX-512 with AVX512_BF16; else block_4x1), or activations rounded to
  // bf16 when laid out and fp32 FMAs.
  F32TileLinear(const float* w, const float* bias, int64_t out, int64_t in, jit::F32Layout layout,
                jit::PostOps post_ops, jit::Isa isa, PoolRef threads, bool round_inputs_to_bf16);

  // x: fp32 [tokens x in]; y: fp32 [tokens x out], or bf16 when bf16_out; residual fp32
  // [tokens x out] or null.
  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  std::string kernel_name() const { return kernels_[0][0]->name(); }
  std::string name() const override { return kernel_name(); }
  std::string isa() const override { return jit::isa_name(kernels_[0][0]->key().isa); }
  int64_t packed_bytes() const override;
  // For tests: the packed weight of the layout in use.
  const sparse::F32BlockWeights& block_weights() const { return block_; }
  const sparse::F32NmWeights& nm_weights() const { return nm_; }
  jit::F32Layout layout() const { return layout_; }

 private:
  jit::F32Layout layout_;
  int64_t out_ = 0, in_ = 0;
  sparse::F32BlockWeights block_;                                    // block_4x1
  sparse::F32NmWeights nm_;                                          // n2_m4
  sparse::Bf16BlockWeights bf16_;                                    // bf16_4x1
  using Kernels = std::shared_ptr<const jit::F32BlockKernel>[2][2];  // [residual][bf16 output]
  // Runs `tokens` tokens on one tile width (the kernels' slices).
  void run_tiles_of(const Kernels& kernels, const float* x, int64_t tokens, void* y,
                    const float* residual, bool bf16_out) const;

  Kernels kernels_;
  Kernels short_kernels_;  // AVX-512 fp32 4x1, 2:4: 32-token tiles for short calls and remainders
  tbb::task_arena* arena_;
  bool round_inputs_to_bf16_;
};

}  // namespace sparq
