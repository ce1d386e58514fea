// AVX2 RMSNorm and SwiGLU (see llama_ops.hpp). Compiled with target attributes.
#include <immintrin.h>

#include <cmath>

#include "models/avx2_math.hpp"
#include "models/llama_ops.hpp"

namespace sparq::models::detail {

__attribute__((target("avx2,fma"))) void rms_norm_rows_avx2(const float* x, int64_t rows,
                                                            int64_t width, const float* w,
                                                            double eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * width;
    float* out = y + r * width;
    // Squares summed in double, as the portable twin (4 lanes x 2 chains).
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= width; i += 8) {
      const __m256 f = _mm256_loadu_ps(v + i);
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
      s0 = _mm256_fmadd_pd(lo, lo, s0);
      s1 = _mm256_fmadd_pd(hi, hi, s1);
    }
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
    double ss = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (; i < width; ++i) ss += double(v[i]) * v[i];
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= width; i += 8)
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), vinv),
                                              _mm256_loadu_ps(w + i)));
    for (; i < width; ++i) out[i] = v[i] * inv * w[i];
  }
}

}  // namespace sparq::models::detail
