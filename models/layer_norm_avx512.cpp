// AVX-512 LayerNorm (see layer_norm.hpp): the AVX2 variant's two float passes on 16 lanes, four
// chains each (two 8-lane chains left a BERT-base row of 768 waiting on the adds' latency), the
// tail masked. Compiled with target attributes, called only after a CPUID check.
#include <immintrin.h>

#include <cmath>

#include "models/avx512_math.hpp"
#include "models/layer_norm.hpp"

// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused merge source, and its own
// -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SPARQ_AVX512_TARGET __attribute__((target("avx512f,avx2,fma")))

namespace sparq::models::detail {
namespace {

SPARQ_AVX512_TARGET inline float total(const __m512 s[4]) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3])));
}

}  // namespace

SPARQ_AVX512_TARGET void layer_norm_rows_avx512(float* x, int64_t rows, int64_t width,
                                                const float* gamma, const float* beta, double eps) {
  const int64_t full = width / 64 * 64;
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * width;
    __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
    for (int64_t i = 0; i < full; i += 64)
      for (int c = 0; c < 4; ++c) s[c] = _mm512_add_ps(s[c], _mm512_loadu_ps(v + i + 16 * c));
    for (int64_t i = full, c = 0; i < width; i += 16, ++c)
      s[c] = _mm512_add_ps(s[c], _mm512_maskz_loadu_ps(first_lanes(width - i), v + i));
    const float mean = total(s) / static_cast<float>(width);
    const __m512 vmean = _mm512_set1_ps(mean);
    for (auto& c : s) c = _mm512_setzero_ps();
    for (int64_t i = 0; i < full; i += 64)
      for (int c = 0; c < 4; ++c) {
        const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(v + i + 16 * c), vmean);
        s[c] = _mm512_fmadd_ps(d, d, s[c]);
      }
    for (int64_t i = full, c = 0; i < width; i += 16, ++c) {
      const __mmask16 m = first_lanes(width - i);
      const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, v + i), vmean);
      s[c] = _mm512_fmadd_ps(d, d, s[c]);
    }
    const float var = total(s);
    const __m512 vinv = _mm512_set1_ps(static_cast<float>(
        1.0 / std::sqrt(static_cast<double>(var) / static_cast<double>(width) + eps)));
    for (int64_t i = 0; i < width; i += 16) {
      const __mmask16 m = first_lanes(width - i);
      const __m512 n = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + i), vmean), vinv);
      _mm512_mask_storeu_ps(v + i, m,
                            _mm512_fmadd_ps(n, _mm512_maskz_loadu_ps(m, gamma + i),
                                            _mm512_maskz_loadu_ps(m, beta + i)));
    }
  }
}

}  // namespace sparq::models::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
