#include "bench/spmm_case.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "bench/bandwidth.hpp"
#include "sparse/bf16.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"

namespace sparq::bench {

std::vector<float> normal(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> pruned_weight(const SpmmSpec& s) {
  auto w = normal(static_cast<size_t>(s.out * s.in), s.seed, 0.05f);
  const Pattern p =
      s.pattern.kind == Pattern::Kind::automatic || s.pattern.kind == Pattern::Kind::dense
          ? Pattern::blocks(4, 1)
          : s.pattern;
  return sparse::prune(w, s.out, s.in, p, s.sparsity);
}

namespace {

LinearOptions options_for(const SpmmSpec& s, float input_threshold) {
  LinearOptions o;
  o.dtype = s.dtype;
  o.pattern = s.pattern;
  o.threads = s.threads;
  o.input_threshold = input_threshold;
  // --input-sparsity measures the sparse-input kernel at every fraction (0 included).
  if (input_threshold > 0.0f) o.expected_input_sparsity = 1.0f;
  return o;
}

// The threshold below which the fraction `sparsity` of x's entries lie (the smallest positive
// float for 0), and x with those entries zeroed.
float threshold_inputs(std::vector<float>& x, double sparsity) {
  if (sparsity <= 0) return std::numeric_limits<float>::min();
  std::vector<float> magnitudes(x.size());
  for (size_t i = 0; i < x.size(); ++i) magnitudes[i] = std::fabs(x[i]);
  const auto k = std::min(magnitudes.size() - 1,
                          static_cast<size_t>(sparsity * static_cast<double>(magnitudes.size())));
  std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(k),
                   magnitudes.end());
  const float t = magnitudes[k];
  for (float& v : x)
    if (std::fabs(v) < t) v = 0.0f;
  return t;
}

}  // namespace

SpmmCase::SpmmCase(const SpmmSpec& spec)
    : spec_(spec),
      x_(normal(static_cast<size_t>(spec.tokens * spec.in), spec.seed + 1, 1.0f)),
      w_(pruned_weight(spec)),
      bias_(normal(static_cast<size_t>(spec.out), spec.seed + 2, 0.1f)),
      y_sparse_(static_cast<size_t>(spec.tokens * spec.out)),
      y_dense_(y_sparse_.size()) {
  if (spec.input_sparsity >= 0) {
    if (spec.input_sparsity >= 1 || spec.tokens > 4)
      throw InvalidArgument("--input-sparsity must be in [0, 1) and needs tokens <= 4, got " +
                            std::to_string(spec.input_sparsity) + " at " +
                            std::to_string(spec.tokens) + " tokens");
    input_threshold_ = threshold_inputs(x_, spec.input_sparsity);
  }
  linears_.push_back(SparseLinear::pack(w_.data(), spec.out, spec.in, bias_.data(),
                                        options_for(spec, input_threshold_)));
  const int threads = linears_.front().info().threads;
  // Copies so that each side's weights total more than 4x the last-level cache.
  auto copies_for = [&](int64_t bytes) {
    if (!spec.cold_weights) return int64_t{1};
    return std::clamp<int64_t>((4 * last_level_cache_bytes()) / std::max<int64_t>(bytes, 1) + 1, 2,
                               512);
  };
  for (int64_t i = copies_for(sparse_weight_bytes()); i > 1; --i)
    linears_.push_back(SparseLinear::pack(w_.data(), spec.out, spec.in, bias_.data(),
                                          options_for(spec, input_threshold_)));
  const int64_t dense_copies = copies_for(dense_weight_bytes());
  if (spec.dtype == DType::int8) {
    xq_.resize(x_.size());
    x_scale_.resize(static_cast<size_t>(spec.tokens));
    sparse::quantize_rows(x_.data(), spec.tokens, spec.in, xq_.data(), x_scale_.data());
    wq_.resize(w_.size());
    w_scale_.resize(static_cast<size_t>(spec.out));
    sparse::quantize_rows(w_.data(), spec.out, spec.in, wq_.data(), w_scale_.data());
    linears_.front().quantize_input(x_.data(), spec.tokens, q_);
    // u8 = q + 128; w_scale * (acc_u8 - 128 * rowsum(w)) + b = w_scale * acc_u8 + b', so the
    // shift costs nothing at run time.
    xu8_.resize(xq_.size());
    for (size_t i = 0; i < xq_.size(); ++i) xu8_[i] = static_cast<uint8_t>(xq_[i] + 128);
    bias_u8_.resize(bias_.size());
    for (int64_t o = 0; o < spec.out; ++o) {
      int64_t rowsum = 0;
      for (int64_t i = 0; i < spec.in; ++i) rowsum += wq_[o * spec.in + i];
      bias_u8_[o] = bias_[o] - w_scale_[o] * 128.0f * static_cast<float>(rowsum);
    }
    for (int64_t i = 0; i < dense_copies; ++i) {
      dense_.push_back(std::make_unique<DnnlMatmul>(DnnlMatmul::Kind::u8s8_f32, spec.tokens,
                                                    spec.out, spec.in, wq_.data(), w_scale_.data(),
                                                    bias_u8_.data(), Activation::none, threads));
      dense_s8_.push_back(std::make_unique<DnnlMatmul>(
          DnnlMatmul::Kind::s8s8_f32, spec.tokens, spec.out, spec.in, wq_.data(), w_scale_.data(),
          bias_.data(), Activation::none, threads));
    }
  } else {
    // bf16 layers against oneDNN's bf16 GEMM where it has one (on bf16 inputs converted once,
    // outside the timing), else its f32 GEMM.
    const bool bf16 = dense_is_bf16();
    if (bf16) x_bf16_ = sparse::to_bf16(x_);
    for (int64_t i = 0; i < dense_copies; ++i)
      dense_.push_back(std::make_unique<DnnlMatmul>(
          bf16 ? DnnlMatmul::Kind::bf16 : DnnlMatmul::Kind::f32, spec.tokens, spec.out, spec.in,
          w_.data(), nullptr, bias_.data(), Activation::none, threads));
  }
}

const SparseLinear& SpmmCase::next_linear() {
  const SparseLinear& l = linears_[next_sparse_];
  next_sparse_ = (next_sparse_ + 1) % linears_.size();
  return l;
}

void SpmmCase::run_sparse() {
  if (spec_.dtype == DType::int8)
    next_linear().forward(q_, y_sparse_.data());
  else
    next_linear().forward(x_.data(), spec_.tokens, y_sparse_.data());
}

void SpmmCase::run_sparse_fp32() {
  next_linear().forward(x_.data(), spec_.tokens, y_sparse_.data());
}

void SpmmCase::run_dense() {
  const auto& d = *dense_[next_dense_];
  next_dense_ = (next_dense_ + 1) % dense_.size();
  const void* x = spec_.dtype == DType::int8 ? static_cast<const void*>(xu8_.data())
                  : x_bf16_.empty()          ? static_cast<const void*>(x_.data())
                                             : static_cast<const void*>(x_bf16_.data());
  d.run(x, y_dense_.data());
}

void SpmmCase::run_dense_s8() {
  if (dense_s8_.empty()) return;
  const auto& d = *dense_s8_[next_dense_s8_];
  next_dense_s8_ = (next_dense_s8_ + 1) % dense_s8_.size();
  d.run(xq_.data(), y_dense_.data());
}

int64_t SpmmCase::sparse_weight_bytes() const {
  const LinearInfo i = linears_.front().info();
  if (spec_.tokens <= 4 && i.decode_packed_bytes > 0) return i.decode_packed_bytes;
  return i.packed_bytes - i.decode_packed_bytes;
}

int64_t SpmmCase::dense_weight_bytes() const {
  return spec_.out * spec_.in * (spec_.dtype == DType::int8 ? 1 : dense_is_bf16() ? 2 : 4);
}

bool SpmmCase::dense_is_bf16() const { return spec_.dtype == DType::bf16 && onednn_has_bf16(); }

namespace {

double max_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::fabs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return scale > 0 ? worst / scale : worst;
}

}  // namespace

std::vector<float> SpmmCase::reference(const float* x_scale) const {
  std::vector<float> ref(y_sparse_.size());
  if (spec_.dtype == DType::int8)
    sparse::linear_int8(xq_.data(), x_scale, spec_.tokens, wq_.data(), w_scale_.data(), spec_.out,
                        spec_.in, {bias_.data()}, ref.data());
  else if (spec_.dtype == DType::bf16)
    sparse::linear_bf16(x_.data(), spec_.tokens, sparse::to_bf16(w_).data(), spec_.out, spec_.in,
                        {bias_.data()}, ref.data());
  else
    sparse::linear_f32(x_.data(), spec_.tokens, w_.data(), spec_.out, spec_.in, {bias_.data()},
                       ref.data());
  return ref;
}

double SpmmCase::sparse_max_error() const {
  return max_error(y_sparse_, reference(x_scale_.data()));
}

double SpmmCase::dense_max_error() const {
  if (dense_is_bf16()) return max_error(y_dense_, reference(nullptr));
  if (spec_.dtype != DType::int8) {
    // Otherwise the dense baseline of f32 and bf16 layers is oneDNN's f32 matmul on the
    // unrounded values.
    std::vector<float> ref(y_dense_.size());
    sparse::linear_f32(x_.data(), spec_.tokens, w_.data(), spec_.out, spec_.in, {bias_.data()},
                       ref.data());
    return max_error(y_dense_, ref);
  }
  // The dense baseline applies the per-channel weight scales and the bias, not the per-token
  // activation scales (oneDNN 2.6 has no fast kernel for those): its reference uses scale 1.
  const std::vector<float> unit_scale(x_scale_.size(), 1.0f);
  return max_error(y_dense_, reference(unit_scale.data()));
}

}  // namespace sparq::bench
