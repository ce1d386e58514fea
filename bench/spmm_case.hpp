// One benchmark case of sparq's sparse linear against oneDNN's dense matmul: the same pruned
// weight, the same quantized input, the same dtype, shape and thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparq/sparq.hpp"
#include "src/dnnl_matmul.hpp"

namespace sparq::bench {

struct SpmmSpec {
  DType dtype = DType::int8;
  Pattern pattern = Pattern::blocks(4, 1);
  int64_t out = 3072, in = 768, tokens = 128;
  double sparsity = 0.9;
  int threads = 1;
  uint32_t seed = 1;
  // Rotate over enough copies of each side's weights that together they exceed 4x the last-level
  // cache, so every call reads its weights from memory, as a decoder step does.
  bool cold_weights = false;
  bool bias = true;  // --device cuda only: false measures the bare matmul
  // >= 0: activation sparsity on (LinearOptions::input_threshold), with the threshold at this
  // quantile of |x| (0: a threshold no input is below, so the same kernel runs on dense inputs);
  // every side (oneDNN, the reference) gets the thresholded input. < 0: off.
  double input_sparsity = -1;
};

// Normal(0, stddev) values, seeded.
std::vector<float> normal(size_t n, uint32_t seed, float stddev);
// The case's weight: normal(0, 0.05) pruned to the spec's pattern and sparsity (auto and dense:
// 4x1 blocks at that sparsity).
std::vector<float> pruned_weight(const SpmmSpec& s);

// Everything both sides need, built once (pack, quantize, primitive creation) before timing.
class SpmmCase {
 public:
  explicit SpmmCase(const SpmmSpec& spec);
  void run_sparse();       // sparq, on pre-quantized activations
  void run_sparse_fp32();  // sparq from fp32 activations: quantization included
  // oneDNN dense int8, on the same quantized activations: u8 (x + 128, the shift folded into
  // the bias; oneDNN's fastest int8 path on CPUs without VNNI) and s8. f32 and bf16 cases:
  // run_dense only, oneDNN's f32 matmul, or for bf16 its bf16 matmul where the CPU has one
  // (AVX512_BF16; dense_is_bf16).
  void run_dense();
  void run_dense_s8();
  // max |y - reference| / max |reference| for sparq and oneDNN, against sparse::linear_int8,
  // linear_bf16 (sparq's bf16) or linear_f32.
  double sparse_max_error() const;
  double dense_max_error() const;
  bool has_s8_baseline() const { return !dense_s8_.empty(); }
  LinearInfo info() const { return linears_.front().info(); }
  // oneDNN's kernel and the operand types, e.g. "brg:avx512_core_vnni:u8s8".
  std::string dense_implementation() const {
    const char* types = spec_.dtype == DType::int8 ? ":u8s8" : dense_is_bf16() ? ":bf16" : ":f32";
    return dense_.front()->implementation() + std::string(types);
  }
  // Weight copies each side rotates over (1 unless cold_weights), and the weight bytes one call
  // reads (for GB/s).
  int sparse_copies() const { return static_cast<int>(linears_.size()); }
  int dense_copies() const { return static_cast<int>(dense_.size()); }
  int64_t sparse_weight_bytes() const;
  int64_t dense_weight_bytes() const;
  bool dense_is_bf16() const;

 private:
  std::vector<float> reference(const float* x_scale) const;
  const SparseLinear& next_linear();

  SpmmSpec spec_;
  std::vector<float> x_, w_, bias_;
  float input_threshold_ = 0;
  std::vector<int8_t> xq_, wq_;
  std::vector<uint8_t> xu8_;
  std::vector<uint16_t> x_bf16_;  // bf16 cases on oneDNN's bf16 GEMM
  std::vector<float> x_scale_, w_scale_, bias_u8_;
  std::vector<SparseLinear> linears_;
  QuantizedInput q_;
  std::vector<std::unique_ptr<DnnlMatmul>> dense_, dense_s8_;
  size_t next_sparse_ = 0, next_dense_ = 0, next_dense_s8_ = 0;
  std::vector<float> y_sparse_, y_dense_;
};

}  // namespace sparq::bench
