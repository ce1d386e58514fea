// Linear layers on AMX tiles for weights whose zeros come in 16x1 blocks (16 output rows x one
// input column), int8 (tdpbsud) and bf16 (tdpbf16ps): each block of 16 rows keeps only the input
// columns any of its rows uses, a group of them to an A tile; per 64-token chunk the kernel
// gathers those columns' activations into B tiles (four of 16 tokens), so the skipped columns
// multiply AMX's throughput instead of competing with it. The sums go through the same row
// epilogue as the dense layers. int8 activations are the quads_u8 chunks the 4x1 VNNI kernels
// read (one QuantizedInput serves both); bf16 ones the bf16 tile kernels' slices.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/operand.hpp"
#include "jit/row_epilogue.hpp"
#include "sparse/amx_16x1_pack.hpp"
#include "src/linear_kernel.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

class Int8Amx16x1Linear final : public LinearKernel {
 public:
  // Whether this CPU runs the kernel: AMX-INT8 with the OS's permission, AVX-512 BW, and
  // SPARQ_MAX_ISA allowing AMX.
  static bool available();

  // Pre-quantized weights: wq s8 [out x in], w_scale [out], bias [out] or null.
  Int8Amx16x1Linear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                    int64_t in, jit::PostOps post_ops, PoolRef threads);

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const override;
  bool reads(const QuantizedInput::Impl& q) const override;
  // y: fp32 [tokens x out], or s8 when y_scale > 0 (requantized), or bf16 when bf16_out;
  // residual fp32 or null.
  void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
           bool bf16_out = false) const override;
  using LinearKernel::run;

  std::string name() const override { return "cpp-amx:int8-16x1"; }
  std::string isa() const override { return "amx_int8"; }
  int64_t packed_bytes() const override { return weights_.bytes(); }
  const sparse::Amx16x1Weights& weights() const { return weights_; }

 private:
  sparse::Amx16x1Weights weights_;
  jit::PostOps post_ops_;
  std::shared_ptr<const jit::RowEpilogue> row_epilogues_[2][3];  // [residual][TileOutput]
  tbb::task_arena* arena_;
};

class Bf16Amx16x1Linear final : public LinearKernel {
 public:
  // Whether this CPU runs the kernel: AMX-BF16 with the OS's permission, AVX-512 BW, and
  // SPARQ_MAX_ISA allowing AMX.
  static bool available();

  // w: fp32 [out x in] (rounded to bf16 here), bias [out] or null.
  Bf16Amx16x1Linear(const float* w, const float* bias, int64_t out, int64_t in,
                    jit::PostOps post_ops, PoolRef threads);

  // x: fp32 [tokens x in] (rounded to bf16); y fp32, or bf16 when bf16_out.
  void run(const float* x, int64_t tokens, void* y, const float* residual,
           bool bf16_out) const override;
  using LinearKernel::run;

  std::string name() const override { return "cpp-amx:bf16-16x1"; }
  std::string isa() const override { return "amx_bf16"; }
  int64_t packed_bytes() const override { return weights_.bytes(); }
  const sparse::Amx16x1Weights& weights() const { return weights_; }

 private:
  sparse::Amx16x1Weights weights_;
  jit::PostOps post_ops_;
  std::shared_ptr<const jit::RowEpilogue> row_epilogues_[2][2];  // [residual][bf16_out]
  tbb::task_arena* arena_;
};

namespace detail {
// The sums of blocks [b0, b1) over one 64-token chunk of activations: sums[s * sums_row + 16 (b -
// b0) + r] for the chunk's token slot s (sparse::chunk_token's order, which both activation
// layouts share) and row r of block b. Need AMX (INT8 / BF16) and AVX-512 BW.
void int8_16x1_amx_sums(const sparse::Amx16x1Weights& w, const uint8_t* chunk, int64_t b0,
                        int64_t b1, int32_t* sums, int64_t sums_row);
void bf16_16x1_amx_sums(const sparse::Amx16x1Weights& w, const uint8_t* chunk, int64_t b0,
                        int64_t b1, float* sums, int64_t sums_row);
}  // namespace detail

}  // namespace sparq
