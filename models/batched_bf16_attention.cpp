#include "models/batched_bf16_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "jit/cpu_features.hpp"
#include "models/attention.hpp"
#include "sparq/error.hpp"
#include "src/bf16_convert.hpp"

namespace sparq::models {
namespace {

// Rows (queries and keys) are padded to this: the softmax takes widths of multiples of 8, and
// the padded keys (zero) score 0 and are masked like keys past a sequence's length.
constexpr int64_t kRowPadding = 16;
// Primitive pairs kept per layer shape: one per distinct (pairs per call, padded length).
constexpr size_t kMaxProducts = 32;
// The scores one oneDNN call writes, at most (at least one pair per call).
constexpr int64_t kScoresBytesPerCall = 128 * 1024;

int64_t padded(int64_t rows) { return (rows + kRowPadding - 1) / kRowPadding * kRowPadding; }

}  // namespace

bool batched_bf16_attention_on_amx() { return onednn_runs_amx(DType::bf16); }

BatchedBf16Attention::BatchedBf16Attention(int64_t heads, int64_t d) : heads_(heads), d_(d) {
  if (heads <= 0 || d <= 0 || d % 2 != 0)
    throw InvalidArgument(
        "BatchedBf16Attention: heads must be positive and d even and positive, got " +
        std::to_string(heads) + " heads of " + std::to_string(d));
}

std::shared_ptr<const BatchedBf16Attention::Products> BatchedBf16Attention::products(
    int64_t count, int64_t rows) const {
  const std::lock_guard lock(mutex_);
  const std::pair key{count, rows};
  auto it = products_.find(key);
  if (it == products_.end()) {
    // Rare (many distinct lengths): start over rather than track use; callers hold their own
    // references.
    if (products_.size() >= kMaxProducts) products_.clear();
    it = products_
             .emplace(key, std::make_shared<const Products>(
                               Products{DnnlBatchedBf16Matmul(count, rows, rows, d_, true),
                                        DnnlBatchedBf16Matmul(count, rows, d_, rows, false)}))
             .first;
  }
  return it->second;
}

std::string BatchedBf16Attention::implementation(int64_t seq) const {
  return products(1, padded(seq))->scores.implementation();
}

void BatchedBf16Attention::run(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0,
                               int64_t w1, float* ctx) const {
  // A few pairs per oneDNN call, so that their scores stay in L2 between the products (one
  // thread, seq 128: 12 pairs per call 355 us, 2 pairs 289-294 us, 1 pair 323-346; seq 384: 1
  // pair 2104-2138 us, 2 pairs 2317-2327).
  const int64_t rows = padded(seq);
  const int64_t chunk = std::max<int64_t>(1, kScoresBytesPerCall / (rows * rows * 4));
  for (int64_t c0 = w0; c0 < w1; c0 += chunk)
    run_pairs(qkv, seq, lengths, c0, std::min(w1, c0 + chunk), ctx);
}

void BatchedBf16Attention::run_pairs(const float* qkv, int64_t seq, const int64_t* lengths,
                                     int64_t w0, int64_t w1, float* ctx) const {
  const int64_t count = w1 - w0, rows = padded(seq), d = d_, hidden = heads_ * d;
  if (count <= 0) return;
  const std::shared_ptr<const Products> p = products(count, rows);
  // Per thread, reused: q, k, v of the pairs [count][rows][d] (bf16, zero past seq), the scores
  // and probabilities [count][rows][rows], the contexts [count][rows][d], 1 / the row sums.
  thread_local std::vector<uint16_t> q, k, v, probs;
  thread_local std::vector<float> scores, context, inv;
  const auto size = [](int64_t n) { return static_cast<size_t>(n); };
  q.resize(size(count * rows * d));
  k.resize(q.size());
  v.resize(q.size());
  probs.resize(size(count * rows * rows));
  scores.resize(probs.size());
  context.resize(q.size());
  inv.resize(size(count * rows));
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t b = w / heads_, head = w % heads_, at = (w - w0) * rows * d;
    const float* base = qkv + b * seq * 3 * hidden + head * d;
    convert_rows_to_bf16(base, 3 * hidden, q.data() + at, d, seq, d);
    convert_rows_to_bf16(base + hidden, 3 * hidden, k.data() + at, d, seq, d);
    convert_rows_to_bf16(base + 2 * hidden, 3 * hidden, v.data() + at, d, seq, d);
    // The padding rows: zero keys score 0 (masked by the softmax), zero values add nothing.
    for (std::vector<uint16_t>* m : {&q, &k, &v})
      std::fill(m->begin() + at + seq * d, m->begin() + at + rows * d, uint16_t{0});
  }
  p->scores.run(q.data(), k.data(), scores.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool avx512 = jit::best_float_isa() >= jit::Isa::avx512;
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t len = lengths[w / heads_], at = (w - w0) * rows * rows;
    float* s = scores.data() + at;
    // exp((s - max) scale) over each row's first len keys, zero past them; inv = 1 / the fp32 sum.
    (avx512 ? detail::softmax_rows_avx512 : detail::softmax_rows_avx2)(
        s, rows, len, rows, scale, inv.data() + (w - w0) * rows);
    convert_to_bf16(s, probs.data() + at, rows * rows);
  }
  p->context.run(probs.data(), v.data(), context.data());
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t b = w / heads_, head = w % heads_, len = lengths[b];
    const float* o = context.data() + (w - w0) * rows * d;
    const float* r = inv.data() + (w - w0) * rows;
    float* out = ctx + b * seq * hidden + head * d;
    for (int64_t i = 0; i < len; ++i)
      for (int64_t c = 0; c < d; ++c) out[i * hidden + c] = o[i * d + c] * r[i];
    for (int64_t i = len; i < seq; ++i) std::fill_n(out + i * hidden, d, 0.0f);
  }
}

}  // namespace sparq::models
