// A bf16 layer's decode steps with activation sparsity: each token is rounded to bf16 (as every
// bf16 layer's input; SparseLinear has zeroed the entries below the layer's input_threshold
// before), and the sparse-input kernel reads only the weight columns of its non-zero entries
// (sparse/bf16_sparse_input_pack.hpp), summing in fp32. The weight is stored in the masked form
// where it is sparse enough to save bytes and the CPU has AVX512_VBMI2, else in the dense form.
// Needs AVX-512 F/BW/VL (the products are fp32 FMAs: no AVX512_BF16 needed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/bf16_sparse_input_kernel.hpp"
#include "jit/operand.hpp"
#include "jit/row_epilogue.hpp"
#include "sparse/bf16_sparse_input_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/threading.hpp"

namespace sparq {

class Bf16SparseInputLinear final : public LinearKernel {
 public:
  // w: fp32 [out x in] holding bf16 values, bias [out] or null.
  Bf16SparseInputLinear(const float* w, const float* bias, int64_t out, int64_t in,
                        jit::PostOps post_ops, PoolRef threads);

  // Any token count (each token reads the columns of its own non-zero inputs).
  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  std::string name() const override { return kernel_->name(); }
  std::string isa() const override { return "avx512"; }
  int64_t packed_bytes() const override { return weights_.bytes(); }
  const sparse::Bf16SparseInputWeights& weights() const { return weights_; }

  // How pack stores a weight: from kMinLongRows rows, the masked form where its bytes are at most
  // 90 % of the dense form's and the CPU runs vpexpandw (2:4 weights: 56 %), in one chunk of the
  // next power of two up to kMaskedRunRows rows (the last chunk storing only its 256-row
  // sub-entries), whose input list the layer's threads split into partial sums; else the dense
  // form in chunks of the longest power of two up to kPageRows rows (a column's entry is 2-4 KiB,
  // one page at 2048; the last chunk stores only its rows), which the layer's threads run in
  // units of sparse_input_unit_rows. Shorter weights in chunks of sparse_input_chunk_rows, the
  // masked form on the same condition. SPARQ_SPARSE_INPUT_FORM and SPARQ_SPARSE_INPUT_CHUNK_ROWS
  // override (measurement switches).
  struct Plan {
    bool masked = false;
    int chunk_rows = 256;
  };
  static constexpr int kPageRows = 2048, kMaskedRunRows = 4096, kMinLongRows = 1024;
  static Plan plan(const float* w, int64_t out, int64_t in, int threads);

 private:
  // One token's step on the masked form's long chunks: list[0..n) and its values, token t.
  void run_masked_long(const int32_t* list, const float* list_x, int64_t n, int64_t t,
                       const float* residual, void* y, const jit::RowEpilogueKey& key,
                       const jit::RowEpilogue* epilogue, int64_t y_elem) const;

  sparse::Bf16SparseInputWeights weights_;
  std::shared_ptr<const jit::Bf16SparseInputKernel> kernel_;
  jit::PostOps post_ops_;
  int64_t unit_rows_;
  std::shared_ptr<const jit::RowEpilogue> epilogues_[2][2];  // [residual][bf16 output]
  tbb::task_arena* arena_;
};

}  // namespace sparq
