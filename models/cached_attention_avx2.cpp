// AVX2 attention of a query-head group over a key/value cache (see cached_attention.hpp).
// Compiled with target attributes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "models/avx2_math.hpp"
#include "models/cached_attention.hpp"

namespace sparq::models::detail {
namespace {

// Positions per block of the value pass: 64 rows of a 64-float head are 16 KiB, which stay in
// L1 while every head of the group accumulates over them.
constexpr int64_t kValueBlock = 64;

// o[0 .. 8W) (+)= sum_{j in [j0, j1)} p[j] v_j[0 .. 8W), the W accumulators in registers (W is a
// template argument so that the compiler unrolls the loop over them and keeps them out of memory).
template <int W>
__attribute__((target("avx2,fma"))) inline void accumulate_values(const float* p,
                                                                  const float* values,
                                                                  int64_t stride, int64_t j0,
                                                                  int64_t j1, float* o) {
  __m256 acc[W];
#pragma GCC unroll 8
  for (int c = 0; c < W; ++c) acc[c] = j0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(o + 8 * c);
  for (int64_t j = j0; j < j1; ++j) {
    const __m256 pj = _mm256_set1_ps(p[j]);
    const float* v = values + j * stride;
#pragma GCC unroll 8
    for (int c = 0; c < W; ++c) acc[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + 8 * c), acc[c]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < W; ++c) _mm256_storeu_ps(o + 8 * c, acc[c]);
}

using AccumulateValues = void (*)(const float*, const float*, int64_t, int64_t, int64_t, float*);
constexpr AccumulateValues kAccumulateValues[8] = {
    accumulate_values<1>, accumulate_values<2>, accumulate_values<3>, accumulate_values<4>,
    accumulate_values<5>, accumulate_values<6>, accumulate_values<7>, accumulate_values<8>};

}  // namespace

__attribute__((target("avx2,fma"))) void cached_attention_avx2(
    const float* q, int64_t group, const float* keys, const float* values, int64_t len, int64_t d,
    int64_t stride, float scale, float* scores, float* out) {
  // Scores, eight keys at a time for every head of the group while those keys are in L1: eight
  // independent accumulator chains (one key at a time would wait on the FMA latency), reduced
  // together into one vector of eight scores.
  const __m256 vscale = _mm256_set1_ps(scale);
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    const float* k = keys + j * stride;
    for (int64_t g = 0; g < group; ++g) {
      const float* qg = q + g * d;
      __m256 a[8];
      for (int i = 0; i < 8; ++i) a[i] = _mm256_setzero_ps();
      for (int64_t e = 0; e < d; e += 8) {
        const __m256 qe = _mm256_loadu_ps(qg + e);
#pragma GCC unroll 8
        for (int i = 0; i < 8; ++i)
          a[i] = _mm256_fmadd_ps(qe, _mm256_loadu_ps(k + i * stride + e), a[i]);
      }
      _mm256_storeu_ps(scores + g * len + j, _mm256_mul_ps(horizontal_sums8(a), vscale));
    }
  }
  for (; j < len; ++j)
    for (int64_t g = 0; g < group; ++g) {
      __m256 a0 = _mm256_setzero_ps();
      for (int64_t e = 0; e < d; e += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * d + e), _mm256_loadu_ps(keys + j * stride + e),
                             a0);
      scores[g * len + j] = horizontal_sum(a0) * scale;
    }
  // Softmax per head, eight scores at a time; the probabilities replace the scores.
  for (int64_t g = 0; g < group; ++g) {
    float* s = scores + g * len;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (j = 0; j + 8 <= len; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
    float m = horizontal_max(vmax);
    for (; j < len; ++j) m = std::max(m, s[j]);
    const __m256 vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= len; j += 8) {
      const __m256 p = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
      _mm256_storeu_ps(s + j, p);
      vsum = _mm256_add_ps(vsum, p);
    }
    float sum = horizontal_sum(vsum);
    for (; j < len; ++j) sum += (s[j] = std::exp(s[j] - m));
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (j = 0; j + 8 <= len; j += 8)
      _mm256_storeu_ps(s + j, _mm256_mul_ps(_mm256_loadu_ps(s + j), inv));
    for (; j < len; ++j) s[j] /= sum;
  }
  // out_g = sum_j p_gj v_j: blocks of positions, every head over a block while it is in L1, 8
  // dimensions per FMA and up to 8 accumulators held in registers.
  for (int64_t e0 = 0; e0 < d; e0 += 64) {
    const AccumulateValues accumulate = kAccumulateValues[std::min<int64_t>(64, d - e0) / 8 - 1];
    for (int64_t j0 = 0; j0 < len; j0 += kValueBlock) {
      const int64_t j1 = std::min(len, j0 + kValueBlock);
      for (int64_t g = 0; g < group; ++g)
        accumulate(scores + g * len, values + e0, stride, j0, j1, out + g * d + e0);
    }
  }
}

}  // namespace sparq::models::detail
