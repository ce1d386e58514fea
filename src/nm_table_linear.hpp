// A 2:4 linear layer for prefill-sized calls on the table kernels (jit/nm_table_kernel.hpp),
// int8 (AVX-512 VNNI) or bf16 (AVX512_BF16). Weights packed once (sparse/nm_table_pack.hpp). Per
// call: activations in the 4x1 kernels' 64-token slices; then each thread takes a contiguous
// range of row groups and, per slice and per chunk of units, builds the chunk's table (in its own
// buffer: no thread waits for another) and runs its groups over it, their partial
// sums waiting in the thread's buffer between chunks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/nm_table_kernel.hpp"
#include "jit/operand.hpp"
#include "sparse/nm_table_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class NmTableLinear final : public LinearKernel {
 public:
  // int8: wq s8 [out x in], 2:4; w_scale [out]; bias [out] or null.
  NmTableLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out, int64_t in,
                jit::PostOps post_ops, PoolRef threads);
  // bf16: w fp32 [out x in] holding bf16 values, 2:4; bias [out] or null.
  NmTableLinear(const float* w, const float* bias, int64_t out, int64_t in, jit::PostOps post_ops,
                PoolRef threads);

  // int8: x fp32 [tokens x in] quantized into the quads_u8 slices (the 4x1 kernel's form).
  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  // int8: y fp32 [tokens x out], or s8 when y_scale > 0, or bf16 when bf16_out; residual fp32 or
  // null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  // bf16: x fp32 [tokens x in] (rounded to bf16 on the way in); y fp32 or bf16 when bf16_out. A
  // call's last 1..32 tokens run on a 16- or 32-token tile.
  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out = false) const override;

  const sparse::NmTableWeights& weights() const { return weights_; }
  std::string kernel_name() const { return kernels_[0][0][quarters_index(4)]->name(); }
  std::string name() const override { return kernel_name(); }
  std::string isa() const override {
    return weights_.type == sparse::NmTableType::int8 ? "avx512_vnni" : "avx512";
  }
  int64_t packed_bytes() const override { return weights_.bytes(); }

 private:
  struct Call;
  void make_kernels(jit::PostOps post_ops);
  void run_slices(const Call& call) const;

  sparse::NmTableWeights weights_;
  static int quarters_index(int quarters) { return quarters / 2; }  // 1, 2, 4 -> 0, 1, 2
  // [residual][jit::TileOutput][quarters_index]
  std::shared_ptr<const jit::NmTableKernel> kernels_[2][3][3];
  tbb::task_arena* arena_;
};

}  // namespace sparq
