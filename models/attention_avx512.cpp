// AVX-512F register tiles for the attention products (see attention.hpp): C = diag(s) A B with
// up to 12 rows x 32 columns of accumulators (24 of 32 zmm), each loaded B vector feeding 12
// multiply-adds; and the row-wise softmax on 16 lanes. Compiled with target attributes, called
// only after a CPUID check.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "models/attention.hpp"
#include "models/avx512_math.hpp"

// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused merge source, and its own
// -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace sparq::models::detail {
namespace {

// C[R x 16 NB] (the last vector masked by `last`) = scale_r * (A[R x K] B[K x 16 NB]).
template <int R, int NB>
__attribute__((target("avx512f"))) inline void tile(const float* a, int64_t lda, const float* b,
                                                    int64_t ldb, int64_t k, float* c, int64_t ldc,
                                                    const float* row_scale, __mmask16 last) {
  __m512 acc[R][NB];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) acc[r][n] = _mm512_setzero_ps();
  for (int64_t e = 0; e < k; ++e) {
    __m512 bv[NB];
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n)
      bv[n] = n + 1 < NB ? _mm512_loadu_ps(b + e * ldb + 16 * n)
                         : _mm512_maskz_loadu_ps(last, b + e * ldb + 16 * n);
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + e]);
#pragma GCC unroll 2
      for (int n = 0; n < NB; ++n) acc[r][n] = _mm512_fmadd_ps(av, bv[n], acc[r][n]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    const __m512 s = _mm512_set1_ps(row_scale ? row_scale[r] : 1.0f);
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) {
      const __m512 v = _mm512_mul_ps(acc[r][n], s);
      if (n + 1 < NB)
        _mm512_storeu_ps(c + r * ldc + 16 * n, v);
      else
        _mm512_mask_storeu_ps(c + r * ldc + 16 * n, last, v);
    }
  }
}

constexpr int kRows = 12;

template <int NB>
__attribute__((target("avx512f"))) void tile_rows(int64_t rows, const float* a, int64_t lda,
                                                  const float* b, int64_t ldb, int64_t k, float* c,
                                                  int64_t ldc, const float* row_scale,
                                                  __mmask16 last) {
  switch (rows) {
#define SPARQ_ROWS(n) \
  case n:             \
    return tile<n, NB>(a, lda, b, ldb, k, c, ldc, row_scale, last);
    SPARQ_ROWS(1)
    SPARQ_ROWS(2)
    SPARQ_ROWS(3)
    SPARQ_ROWS(4)
    SPARQ_ROWS(5)
    SPARQ_ROWS(6)
    SPARQ_ROWS(7)
    SPARQ_ROWS(8)
    SPARQ_ROWS(9)
    SPARQ_ROWS(10)
    SPARQ_ROWS(11)
#undef SPARQ_ROWS
    default:
      return tile<kRows, NB>(a, lda, b, ldb, k, c, ldc, row_scale, last);
  }
}

}  // namespace

__attribute__((target("avx512f"))) void small_gemm_avx512(int64_t m, int64_t n, int64_t k,
                                                          const float* a, int64_t lda,
                                                          const float* b, int64_t ldb, float* c,
                                                          int64_t ldc, const float* row_scale) {
  for (int64_t i = 0; i < m; i += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, m - i);
    const float* scale = row_scale ? row_scale + i : nullptr;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32)
      tile_rows<2>(rows, a + i * lda, lda, b + j, ldb, k, c + i * ldc + j, ldc, scale, 0xffff);
    if (j < n) {
      // 8 to 24 columns left (n is a multiple of 8): one or two vectors, the last masked.
      const int64_t left = n - j;
      const auto last = static_cast<__mmask16>(left % 16 == 0 ? 0xffff : 0x00ff);
      if (left > 16)
        tile_rows<2>(rows, a + i * lda, lda, b + j, ldb, k, c + i * ldc + j, ldc, scale, last);
      else
        tile_rows<1>(rows, a + i * lda, lda, b + j, ldb, k, c + i * ldc + j, ldc, scale, last);
    }
  }
}

__attribute__((target("avx512f,avx2,fma"))) void softmax_rows_avx512(float* scores, int64_t rows,
                                                                     int64_t len, int64_t width,
                                                                     float scale, float* inv) {
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < rows; ++i) {
    float* p = scores + i * width;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < len; j += 16) {
      const __mmask16 m = first_lanes(len - j);
      vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, p + j));
    }
    // p[j] = exp((p[j] - max) scale); the padding keys (len <= j < width) become 0.
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax) * scale);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < width; j += 16) {
      const __mmask16 valid = j < len ? first_lanes(len - j) : 0;
      const __m512 e = _mm512_maskz_mov_ps(
          valid, exp_nonpositive(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(valid, p + j), vscale, vm)));
      _mm512_mask_storeu_ps(p + j, first_lanes(width - j), e);
      vsum = _mm512_add_ps(vsum, e);
    }
    inv[i] = 1.0f / _mm512_reduce_add_ps(vsum);
  }
}

}  // namespace sparq::models::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
