// AVX2 attention of one query row over a key/value cache (see cached_attention.hpp). Compiled
// with target attributes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "models/avx2_sum.hpp"
#include "models/cached_attention.hpp"

namespace sparq::models::detail {
__attribute__((target("avx2,fma"))) void cached_attention_row_avx2(
    const float* q, const float* keys, const float* values, int64_t len, int64_t d, int64_t stride,
    float scale, float* scores, float* out) {
  // Scores, two keys at a time (independent accumulator chains).
  float m = -INFINITY;
  int64_t j = 0;
  for (; j + 2 <= len; j += 2) {
    const float* k0 = keys + j * stride;
    const float* k1 = k0 + stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int64_t e = 0; e < d; e += 8) {
      const __m256 qe = _mm256_loadu_ps(q + e);
      a0 = _mm256_fmadd_ps(qe, _mm256_loadu_ps(k0 + e), a0);
      a1 = _mm256_fmadd_ps(qe, _mm256_loadu_ps(k1 + e), a1);
    }
    scores[j] = horizontal_sum(a0) * scale;
    scores[j + 1] = horizontal_sum(a1) * scale;
    m = std::max(m, std::max(scores[j], scores[j + 1]));
  }
  for (; j < len; ++j) {
    const float* k0 = keys + j * stride;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t e = 0; e < d; e += 8)
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + e), _mm256_loadu_ps(k0 + e), a0);
    scores[j] = horizontal_sum(a0) * scale;
    m = std::max(m, scores[j]);
  }
  float sum = 0.0f;
  for (j = 0; j < len; ++j) sum += (scores[j] = std::exp(scores[j] - m));
  const float inv = 1.0f / sum;
  // out = sum_j p_j v_j, 8 dimensions per FMA, up to 8 accumulators held in registers.
  for (int64_t e0 = 0; e0 < d; e0 += 64) {
    const int64_t width = std::min<int64_t>(64, d - e0) / 8;
    __m256 acc[8];
    for (int64_t c = 0; c < width; ++c) acc[c] = _mm256_setzero_ps();
    for (j = 0; j < len; ++j) {
      const __m256 p = _mm256_set1_ps(scores[j]);
      const float* v = values + j * stride + e0;
      for (int64_t c = 0; c < width; ++c)
        acc[c] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * c), acc[c]);
    }
    for (int64_t c = 0; c < width; ++c)
      _mm256_storeu_ps(out + e0 + 8 * c, _mm256_mul_ps(acc[c], _mm256_set1_ps(inv)));
  }
}

}  // namespace sparq::models::detail
