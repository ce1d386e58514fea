#include "models/cached_attention.hpp"

#include <algorithm>
#include <cmath>

#include "jit/cpu_features.hpp"

namespace sparq::models {

void cached_attention(const float* q, int64_t group, const float* keys, const float* values,
                      int64_t len, int64_t d, int64_t stride, float scale, float* scores,
                      float* out) {
  if (d % 8 == 0 && jit::best_float_isa() >= jit::Isa::avx2)
    detail::cached_attention_avx2(q, group, keys, values, len, d, stride, scale, scores, out);
  else
    detail::cached_attention_portable(q, group, keys, values, len, d, stride, scale, scores, out);
}

namespace detail {

void cached_attention_portable(const float* q, int64_t group, const float* keys,
                               const float* values, int64_t len, int64_t d, int64_t stride,
                               float scale, float* scores, float* out) {
  for (int64_t g = 0; g < group; ++g) {
    const float* qg = q + g * d;
    float* og = out + g * d;
    float m = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      float dot = 0.0f;
      for (int64_t e = 0; e < d; ++e) dot += qg[e] * keys[j * stride + e];
      scores[j] = dot * scale;
      m = std::max(m, scores[j]);
    }
    float sum = 0.0f;
    for (int64_t j = 0; j < len; ++j) sum += (scores[j] = std::exp(scores[j] - m));
    std::fill_n(og, d, 0.0f);
    for (int64_t j = 0; j < len; ++j) {
      const float p = scores[j] / sum;
      for (int64_t e = 0; e < d; ++e) og[e] += p * values[j * stride + e];
    }
  }
}

}  // namespace detail
}  // namespace sparq::models
