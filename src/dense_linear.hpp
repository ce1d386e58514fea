// A dense layer on oneDNN: fp32 on its f32 matmul; bf16 on its bf16 GEMM where it has one
// (onednn_has_bf16), else on its f32 matmul with bf16-rounded inputs (the weight is rounded at
// pack time); int8 on its s8 GEMM with s32 output, then sparq's generated row epilogue (scales,
// bias, activation, residual, output type) on the layer's threads. One oneDNN primitive per token
// count, the most recent kMaxPrimitives kept, made on first use; they share the weights as
// reordered for the first one wherever their implementation takes that layout (a primitive that
// kept its own copy held another 1x of the weight per token count: an int8 llama-1b grew from 1.8
// to 3.3 GiB resident over its first prompt and decode step). Once the first primitive exists,
// the layer's own plain copy of an int8 or fp32 weight is released where oneDNN reorders the
// shared weights back into it exactly (checked then); a later primitive that cannot share reads
// its weights back from them.

#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "jit/operand.hpp"
#include "jit/row_epilogue.hpp"
#include "src/aligned.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/linear_kernel.hpp"
#include "src/threading.hpp"

namespace sparq {

class DenseLinear final : public LinearKernel {
 public:
  // The layer's weight (d.weight; int8: d.w_s8 / d.w_scale), bias and epilogue.
  explicit DenseLinear(const LayerDescription& d);

  std::string name() const override;
  std::string isa() const override { return "onednn"; }
  int64_t packed_bytes() const override;

  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out) const override;
  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out) const override;

 private:
  std::shared_ptr<const DnnlMatmul> primitive(int64_t tokens) const;
  bool bf16_gemm() const { return dtype_ == DType::bf16 && onednn_has_bf16(); }

  static constexpr size_t kMaxPrimitives = 8;
  int64_t out_, in_;
  DType dtype_;
  jit::PostOps post_ops_;
  int threads_;
  tbb::task_arena* arena_;
  // The plain weights (until released, see above); bias empty without one.
  mutable AlignedVector<float> w_f32_;  // fp32 / bf16 layers
  std::vector<float> bias_;
  mutable AlignedVector<int8_t> w_s8_;   // int8 layers
  mutable bool plain_released_ = false;  // under mutex_
  std::vector<float> w_scale_, dense_bias_;
  // int8: 128 x each row's weight sum, what the u8 activations (q + 128) add to oneDNN's product;
  // empty where the u8 product could overflow s32 (in > 65793): s8 activations then.
  std::vector<int32_t> w_shift_;
  // int8: the epilogue after oneDNN's s32 product, [residual][TileOutput] (null: portable).
  std::shared_ptr<const jit::RowEpilogue> row_epilogues_[2][3];
  mutable std::mutex mutex_;
  mutable std::list<std::pair<int64_t, std::shared_ptr<const DnnlMatmul>>> primitives_;
  mutable std::shared_ptr<DnnlSharedWeights> shared_weights_;  // under mutex_
};

}  // namespace sparq
