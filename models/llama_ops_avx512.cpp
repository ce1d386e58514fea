// AVX-512 RMSNorm and SwiGLU (see llama_ops.hpp): the AVX2 variants on 16 lanes, tails masked.
// Compiled with target attributes, called only after a CPUID check.
#include <immintrin.h>

#include <cmath>

#include "models/avx512_math.hpp"
#include "models/llama_ops.hpp"

// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused merge source, and its own
// -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SPARQ_AVX512_TARGET __attribute__((target("avx512f,avx2,fma")))

namespace sparq::models::detail {

SPARQ_AVX512_TARGET void rms_norm_rows_avx512(const float* x, int64_t rows, int64_t width,
                                              const float* w, double eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * width;
    float* out = y + r * width;
    // Squares summed in double, as the portable twin (8 lanes x 2 chains).
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < width; i += 16) {
      const __m512 f = _mm512_maskz_loadu_ps(first_lanes(width - i), v + i);
      const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
      const __m512d hi =
          _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
      s0 = _mm512_fmadd_pd(lo, lo, s0);
      s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    const __m512 vinv = _mm512_set1_ps(inv);
    for (int64_t i = 0; i < width; i += 16) {
      const __mmask16 m = first_lanes(width - i);
      // (v inv) w, in the portable twin's order.
      const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), vinv);
      _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(p, _mm512_maskz_loadu_ps(m, w + i)));
    }
  }
}

}  // namespace sparq::models::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
