// An int8 layer's decode steps with activation sparsity: each token is quantized (symmetric,
// max |x| / 127, as every int8 layer; SparseLinear has zeroed the entries below the layer's
// input_threshold before), and the sparse-input kernel reads only the weight columns of the
// non-zero quantized entries (sparse/int8_sparse_input_pack.hpp). The weight is stored in the
// masked form where it is sparse enough to save bytes (zero weights cost nothing but their mask
// bit) and the CPU has AVX512_VBMI2, else in the dense form. Needs AVX-512 VNNI.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_sparse_input_kernel.hpp"
#include "jit/operand.hpp"
#include "jit/row_epilogue.hpp"
#include "sparse/int8_sparse_input_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8SparseInputLinear final : public LinearKernel {
 public:
  // wq s8 [out x in], w_scale [out], bias [out] or null.
  Int8SparseInputLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                        int64_t in, jit::PostOps post_ops, PoolRef threads);

  // Any token count (each token reads the columns of its own non-zero inputs).
  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override {
    return q.form == QuantizedInput::Impl::Form::sparse_input && q.in == weights_.in;
  }
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out) const override;
  using LinearKernel::run;

  std::string name() const override { return kernel_->name(); }
  std::string isa() const override { return "avx512_vnni"; }
  int64_t packed_bytes() const override { return weights_.bytes(); }
  const sparse::Int8SparseInputWeights& weights() const { return weights_; }

  // The form pack chooses: masked where its bytes are at most 90 % of the dense form's and the
  // CPU runs vpexpandb, else dense (either form with SPARQ_SPARSE_INPUT_FORM).
  static bool masked_form(const int8_t* wq, int64_t out, int64_t in);
  // The chunk height pack uses: weights of fewer than kMinLongRows rows sparse_input_chunk_rows;
  // longer ones the shortest power of two that holds them, up to kPageRows (dense form) or
  // kMaskedRunRows (masked form), so that a column's entry is a 4 KiB page in the dense form
  // (2-4 KiB; the last chunk stores only its rows) and one run of sub-entries in the masked form;
  // the layer's threads split the input list over whole chunks into partial sums. (Zen 4, cold
  // weights, one thread, dense weights at 50 % / 75 % zero inputs: 2048 x 2048 in 2048-row
  // chunks 1.14x / 2.16x oneDNN, in 256-row chunks 0.79x / 1.48x. 2:4 weights, 11008 x 4096, two
  // threads, 50 % zero inputs: chunks of 8192 rows 2.26-2.48x, of 4096 rows 1.92-2.13x.)
  static constexpr int kPageRows = 4096, kMaskedRunRows = 8192, kMinLongRows = 2048;
  static int chunk_rows_for(int64_t out, int threads, bool masked);

 private:
  sparse::Int8SparseInputWeights weights_;
  jit::PostOps post_ops_;
  std::shared_ptr<const jit::SparseInputKernel> kernel_;
  std::shared_ptr<const jit::RowEpilogue> epilogues_[2][3];  // [residual][output]
  tbb::task_arena* arena_;
};

}  // namespace sparq
