// AVX2 attention for one sequence and head (see attention.hpp). Compiled with target attributes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "models/attention.hpp"

namespace sparq::models::detail {
namespace {

// exp(x) for x <= 0 (softmax after subtracting the max): 2^k e^r with k = round(x log2 e),
// |r| <= ln 2 / 2, e^r by a degree-6 polynomial; relative error below 2e-7. Inputs below -87
// give 0 (via the clamp and 2^k underflow to a tiny normal, then multiplied away).
__attribute__((target("avx2,fma"))) inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

}  // namespace

__attribute__((target("avx2,fma"))) void attention_head_avx2(const float* q, const float* k,
                                                             const float* v, int64_t len, int64_t d,
                                                             int64_t stride, float* ctx,
                                                             int64_t ctx_stride,
                                                             std::vector<float>& scratch) {
  // kt: k transposed, [d x len8] (len rounded up to 8, zero padded); p: one row of scores.
  const int64_t len8 = (len + 7) / 8 * 8;
  scratch.assign(static_cast<size_t>(d * len8 + len8 + d), 0.0f);
  float* kt = scratch.data();
  float* p = kt + d * len8;
  float* row = p + len8;
  for (int64_t j = 0; j < len; ++j)
    for (int64_t e = 0; e < d; ++e) kt[e * len8 + j] = k[j * stride + e];
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t i = 0; i < len; ++i) {
    // Scores: p[j] = sum_e q[i][e] kt[e][j], 8 keys per FMA.
    for (int64_t j = 0; j < len8; j += 8) _mm256_storeu_ps(p + j, _mm256_setzero_ps());
    for (int64_t j0 = 0; j0 < len8; j0 += 32) {
      const int64_t n = std::min<int64_t>(32, len8 - j0) / 8;
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
      for (int64_t e = 0; e < d; ++e) {
        const __m256 qe = _mm256_set1_ps(q[i * stride + e]);
        const float* kr = kt + e * len8 + j0;
        for (int64_t b = 0; b < n; ++b)
          acc[b] = _mm256_fmadd_ps(qe, _mm256_loadu_ps(kr + 8 * b), acc[b]);
      }
      for (int64_t b = 0; b < n; ++b) _mm256_storeu_ps(p + j0 + 8 * b, acc[b]);
    }
    float m = -INFINITY;
    for (int64_t j = 0; j < len; ++j) m = std::max(m, p[j] * scale);
    // p[j] = exp(p[j] scale - m), 8 at a time; the padding keys (j >= len) become 0.
    const __m256 vscale = _mm256_set1_ps(scale), vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = 0; j < len8; j += 8) {
      __m256 e = exp_nonpositive(_mm256_fmsub_ps(_mm256_loadu_ps(p + j), vscale, vm));
      if (j + 8 > len) {  // zero the lanes past the sequence
        alignas(32) float lanes[8];
        _mm256_store_ps(lanes, e);
        for (int64_t l = len - j; l < 8; ++l) lanes[l] = 0.0f;
        e = _mm256_load_ps(lanes);
      }
      _mm256_storeu_ps(p + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    alignas(32) float sums[8];
    _mm256_store_ps(sums, vsum);
    float sum = 0.0f;
    for (float x : sums) sum += x;
    const float inv = 1.0f / sum;
    // Context: row[e] = sum_j p[j] v[j][e], 8 dimensions per FMA.
    for (int64_t e0 = 0; e0 < d; e0 += 8) {
      if (e0 + 8 <= d) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t j = 0; j < len; ++j)
          acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + j * stride + e0), acc);
        _mm256_storeu_ps(row + e0, _mm256_mul_ps(acc, _mm256_set1_ps(inv)));
      } else {
        for (int64_t e = e0; e < d; ++e) {
          float acc = 0.0f;
          for (int64_t j = 0; j < len; ++j) acc += p[j] * v[j * stride + e];
          row[e] = acc * inv;
        }
      }
    }
    std::copy_n(row, d, ctx + i * ctx_stride);
  }
}

}  // namespace sparq::models::detail
