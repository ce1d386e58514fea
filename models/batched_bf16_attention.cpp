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

// Rows (queries and keys) are padded to this: the AMX blocks are 32 x 32, the softmax takes
// widths of multiples of 8, and the padded keys (zero) score 0 and are masked like keys past a
// sequence's length.
constexpr int64_t kRowPadding = 32;
// Primitive pairs kept per layer shape: one per distinct (pairs per call, padded length).
constexpr size_t kMaxProducts = 32;
// The scores one oneDNN call writes, at most (at least one pair per call).
constexpr int64_t kScoresBytesPerCall = 128 * 1024;

int64_t padded(int64_t rows) { return (rows + kRowPadding - 1) / kRowPadding * kRowPadding; }

}  // namespace

bool batched_bf16_attention_on_amx() { return onednn_runs_amx(DType::bf16); }

bool amx_tiles_for_attention(int64_t d) {
  const jit::CpuFeatures& f = jit::cpu_features();
  return f.amx_tile && f.amx_bf16 && d % 32 == 0 && jit::best_float_isa() >= jit::Isa::avx512;
}

BatchedBf16Attention::BatchedBf16Attention(int64_t heads, int64_t d, Products products)
    : heads_(heads), d_(d), own_tiles_(products == Products::own_tiles) {
  if (heads <= 0 || d <= 0 || d % 2 != 0)
    throw InvalidArgument(
        "BatchedBf16Attention: heads must be positive and d even and positive, got " +
        std::to_string(heads) + " heads of " + std::to_string(d));
  if (own_tiles_ && !amx_tiles_for_attention(d))
    throw NotSupported(
        "BatchedBf16Attention: sparq's tile products need AMX-BF16 (granted by the "
        "OS) and a head dimension that is a multiple of 32; this CPU has: " +
        jit::cpu_features().names() + ", head dimension " + std::to_string(d));
}

std::shared_ptr<const BatchedBf16Attention::DnnlProducts> BatchedBf16Attention::products(
    int64_t count, int64_t rows) const {
  const std::lock_guard lock(mutex_);
  const std::pair key{count, rows};
  auto it = products_.find(key);
  if (it == products_.end()) {
    // Rare (many distinct lengths): start over rather than track use; callers hold their own
    // references.
    if (products_.size() >= kMaxProducts) products_.clear();
    it = products_
             .emplace(key, std::make_shared<const DnnlProducts>(
                               DnnlProducts{DnnlBatchedBf16Matmul(count, rows, rows, d_, true),
                                            DnnlBatchedBf16Matmul(count, rows, d_, rows, false)}))
             .first;
  }
  return it->second;
}

std::string BatchedBf16Attention::implementation(int64_t seq) const {
  if (own_tiles_) return "amx_bf16 tiles";
  return std::string("oneDNN batched matmul, ") + products(1, padded(seq))->scores.implementation();
}

void BatchedBf16Attention::run(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0,
                               int64_t w1, float* ctx) const {
  if (own_tiles_) {
    for (int64_t w = w0; w < w1; ++w) run_pair_on_tiles(qkv, seq, lengths, w, ctx);
    return;
  }
  // A few pairs per oneDNN call, so that their scores stay in L2 between the products (one
  // thread, seq 128: 12 pairs per call 355 us, 2 pairs 289-294 us, 1 pair 323-346; seq 384: 1
  // pair 2104-2138 us, 2 pairs 2317-2327).
  const int64_t rows = padded(seq);
  const int64_t chunk = std::max<int64_t>(1, kScoresBytesPerCall / (rows * rows * 4));
  for (int64_t c0 = w0; c0 < w1; c0 += chunk)
    run_pairs(qkv, seq, lengths, c0, std::min(w1, c0 + chunk), ctx);
}

void BatchedBf16Attention::run_pair_on_tiles(const float* qkv, int64_t seq, const int64_t* lengths,
                                             int64_t w, float* ctx) const {
  const int64_t rows = padded(seq), d = d_, hidden = heads_ * d;
  const int64_t b = w / heads_, head = w % heads_, len = lengths[b];
  thread_local std::vector<uint16_t> q, k, v, probs;
  thread_local std::vector<uint32_t> k_pairs, v_pairs;
  thread_local std::vector<float> scores, context, inv;
  const auto size = [](int64_t n) { return static_cast<size_t>(n); };
  for (std::vector<uint16_t>* m : {&q, &k, &v}) m->resize(size(rows * d));
  k_pairs.resize(q.size() / 2);
  v_pairs.resize(q.size() / 2);
  probs.resize(size(rows * rows));
  scores.resize(probs.size());
  context.resize(q.size());
  inv.resize(size(rows));
  const float* base = qkv + b * seq * 3 * hidden + head * d;
  convert_rows_to_bf16(base, 3 * hidden, q.data(), d, seq, d);
  convert_rows_to_bf16(base + hidden, 3 * hidden, k.data(), d, seq, d);
  convert_rows_to_bf16(base + 2 * hidden, 3 * hidden, v.data(), d, seq, d);
  for (std::vector<uint16_t>* m : {&q, &k, &v})
    std::fill(m->begin() + seq * d, m->end(), uint16_t{0});
  // The tiles' B operands hold pairs along the summed dimension: k's pairs of dimensions, one
  // key per column; v's pairs of keys, one dimension per column.
  for (int64_t j = 0; j < rows; ++j)
    for (int64_t r = 0; r < d / 2; ++r)
      k_pairs[size(r * rows + j)] =
          uint32_t{k[size(j * d + 2 * r)]} | uint32_t{k[size(j * d + 2 * r + 1)]} << 16;
  for (int64_t r = 0; r < rows / 2; ++r)
    for (int64_t c = 0; c < d; ++c)
      v_pairs[size(r * d + c)] =
          uint32_t{v[size(2 * r * d + c)]} | uint32_t{v[size((2 * r + 1) * d + c)]} << 16;
  detail::amx_bf16_product(q.data(), k_pairs.data(), rows, rows, d, scores.data());
  detail::softmax_rows_avx512(scores.data(), rows, len, rows, 1.0f / std::sqrt(float(d)),
                              inv.data());
  convert_to_bf16(scores.data(), probs.data(), rows * rows);
  detail::amx_bf16_product(probs.data(), v_pairs.data(), rows, d, rows, context.data());
  float* out = ctx + b * seq * hidden + head * d;
  for (int64_t i = 0; i < len; ++i)
    for (int64_t c = 0; c < d; ++c) out[i * hidden + c] = context[size(i * d + c)] * inv[size(i)];
  for (int64_t i = len; i < seq; ++i) std::fill_n(out + i * hidden, d, 0.0f);
}

void BatchedBf16Attention::run_pairs(const float* qkv, int64_t seq, const int64_t* lengths,
                                     int64_t w0, int64_t w1, float* ctx) const {
  const int64_t count = w1 - w0, rows = padded(seq), d = d_, hidden = heads_ * d;
  if (count <= 0) return;
  const std::shared_ptr<const DnnlProducts> p = products(count, rows);
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
