#include "models/attention.hpp"

#include <algorithm>
#include <cmath>

#include "jit/cpu_features.hpp"

namespace sparq::models {

void attention_head(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                    int64_t stride, float* ctx, int64_t ctx_stride, std::vector<float>& scratch) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    detail::attention_head_avx512(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
  else if (jit::best_float_isa() >= jit::Isa::avx2)
    detail::attention_head_avx2(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
  else
    detail::attention_head_portable(q, k, v, len, d, stride, ctx, ctx_stride, scratch);
}

namespace detail {

void attention_head_portable(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                             int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch) {
  scratch.resize(static_cast<size_t>(len));
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float* p = scratch.data();
  for (int64_t i = 0; i < len; ++i) {
    float m = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      float s = 0.0f;
      for (int64_t e = 0; e < d; ++e) s += q[i * stride + e] * k[j * stride + e];
      p[j] = s * scale;
      m = std::max(m, p[j]);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < len; ++j) sum += (p[j] = std::exp(p[j] - m));
    for (int64_t e = 0; e < d; ++e) {
      float acc = 0.0f;
      for (int64_t j = 0; j < len; ++j) acc += p[j] * v[j * stride + e];
      ctx[i * ctx_stride + e] = acc / sum;
    }
  }
}

}  // namespace detail
}  // namespace sparq::models
