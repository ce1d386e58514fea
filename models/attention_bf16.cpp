// The bf16 attention's dispatch and its portable twin (see attention.hpp).
#include <algorithm>
#include <cmath>

#include "jit/f32_block_kernel.hpp"
#include "models/attention.hpp"
#include "sparse/bf16.hpp"

namespace sparq::models {

bool bf16_attention_runs_natively(int64_t d) {
  return d % 2 == 0 && d <= kMaxBf16HeadDim && jit::native_bf16_available();
}

void attention_head_bf16(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                         int64_t stride, float* ctx, int64_t ctx_stride,
                         std::vector<float>& scratch) {
  if (bf16_attention_runs_on_amx(d))
    detail::attention_head_bf16_amx(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
  else if (bf16_attention_runs_natively(d))
    detail::attention_head_bf16_avx512(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
  else
    detail::attention_head_bf16_portable(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
}

namespace detail {

namespace {
float bf16_round(float x) { return sparse::from_bf16(sparse::to_bf16(x)); }
}  // namespace

void attention_head_bf16_portable(const float* q, const float* k, const float* v, int64_t len,
                                  int64_t d, int64_t stride, float* ctx, int64_t ctx_stride,
                                  std::vector<float>& scratch) {
  scratch.resize(static_cast<size_t>(2 * len));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float* s = scratch.data();
  float* p = s + len;
  for (int64_t i = 0; i < len; ++i) {
    float m = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      float acc = 0.0f;
      for (int64_t e = 0; e < d; ++e)
        acc += bf16_round(q[i * stride + e]) * bf16_round(k[j * stride + e]);
      s[j] = acc;
      m = std::max(m, acc);
    }
    // The sum is of the fp32 probabilities; the product with V takes them rounded to bf16.
    float sum = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const float e = std::exp((s[j] - m) * scale);
      sum += e;
      p[j] = bf16_round(e);
    }
    for (int64_t e = 0; e < d; ++e) {
      float acc = 0.0f;
      for (int64_t j = 0; j < len; ++j) acc += p[j] * bf16_round(v[j * stride + e]);
      ctx[i * ctx_stride + e] = acc / sum;
    }
  }
}

}  // namespace detail
}  // namespace sparq::models
