// AVX2 LayerNorm (see layer_norm.hpp). Compiled with target attributes.
#include <immintrin.h>

#include <cmath>

#include "models/avx2_math.hpp"
#include "models/layer_norm.hpp"

namespace sparq::models::detail {
__attribute__((target("avx2,fma"))) void layer_norm_rows_avx2(float* x, int64_t rows, int64_t width,
                                                              const float* gamma, const float* beta,
                                                              double eps) {
  const int64_t full = width / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * width;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= full; i += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(v + i));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(v + i + 8));
    }
    if (i < full) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(v + i));
    float sum = horizontal_sum(_mm256_add_ps(s0, s1));
    for (i = full; i < width; ++i) sum += v[i];
    const float mean = sum / static_cast<float>(width);
    const __m256 vmean = _mm256_set1_ps(mean);
    s0 = _mm256_setzero_ps();
    s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= full; i += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(v + i), vmean);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(v + i + 8), vmean);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    if (i < full) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(v + i), vmean);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
    }
    float var = horizontal_sum(_mm256_add_ps(s0, s1));
    for (i = full; i < width; ++i) var += (v[i] - mean) * (v[i] - mean);
    const float inv = static_cast<float>(
        1.0 / std::sqrt(static_cast<double>(var) / static_cast<double>(width) + eps));
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i < full; i += 8) {
      const __m256 n = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(v + i), vmean), vinv);
      _mm256_storeu_ps(v + i,
                       _mm256_fmadd_ps(n, _mm256_loadu_ps(gamma + i), _mm256_loadu_ps(beta + i)));
    }
    for (; i < width; ++i) v[i] = (v[i] - mean) * inv * gamma[i] + beta[i];
  }
}

}  // namespace sparq::models::detail
