// bf16 attention for one sequence and head on AVX512_BF16 (see attention.hpp). Both products run
// on register tiles of vdpbf16ps: an A operand of bf16 rows (a pair of k-neighbours is one dword,
// broadcast) and a B operand packed in pairs ([k / 2][columns] dwords: both k-neighbours of a
// column side by side), so each loaded B vector feeds up to 12 rows and each instruction does 32
// multiply-adds. Compiled with target attributes, called only after a CPUID check.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/attention.hpp"
#include "models/avx512_math.hpp"

// GCC 12's shift and conversion intrinsics pass _mm512_undefined_epi32() as their unused merge
// source, and its own -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SPARQ_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

namespace sparq::models::detail {
namespace {

// 16 floats rounded to bf16 to nearest even, as sparse::to_bf16 (integer arithmetic, so the
// result does not depend on the rounding mode; a NaN stays a quiet NaN).
SPARQ_BF16_TARGET inline __m256i to_bf16(__m512 v) {
  const __m512i x = _mm512_castps_si512(v);
  const __m512i top = _mm512_srli_epi32(x, 16);
  const __m512i rounding =
      _mm512_add_epi32(_mm512_and_si512(top, _mm512_set1_epi32(1)), _mm512_set1_epi32(0x7fff));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(x, rounding), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

// n floats (any n) to bf16.
SPARQ_BF16_TARGET void row_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), to_bf16(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, m, to_bf16(_mm512_maskz_loadu_ps(m, src + i)));
  }
}

// The softmax of scores [rows x width] over the first len columns (width a multiple of 16, >=
// len), written as bf16 probabilities p = exp((s - max) scale) into pb (same shape; columns len..
// zero), with inv[i] = 1 / (the sum of row i's fp32 probabilities).
SPARQ_BF16_TARGET void softmax_rows_to_bf16(const float* scores, int64_t rows, int64_t len,
                                            int64_t width, float scale, uint16_t* pb, float* inv) {
  const __m512 vscale = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < rows; ++i) {
    const float* s = scores + i * width;
    uint16_t* p = pb + i * width;
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < len; j += 16) {
      const auto m = static_cast<__mmask16>(len - j >= 16 ? 0xffff : (1u << (len - j)) - 1);
      vmax = _mm512_mask_max_ps(vmax, m, vmax, _mm512_maskz_loadu_ps(m, s + j));
    }
    const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(vmax) * scale);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t j = 0; j < width; j += 16) {
      const auto m = static_cast<__mmask16>(j >= len        ? 0
                                            : len - j >= 16 ? 0xffff
                                                            : (1u << (len - j)) - 1);
      const __m512 e = _mm512_maskz_mov_ps(
          m, exp_nonpositive(_mm512_fmsub_ps(_mm512_loadu_ps(s + j), vscale, vm)));
      vsum = _mm512_add_ps(vsum, e);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p + j), to_bf16(e));
    }
    inv[i] = 1.0f / _mm512_reduce_add_ps(vsum);
  }
}

// C[R x 16 NB] (the last vector masked by `last`) = scale_r * (A[R x 2 KP] B[KP x 16 NB]) with A
// bf16 rows (stride lda elements) and B packed in pairs (row p: the dwords of k = 2p, 2p + 1).
template <int R, int NB>
SPARQ_BF16_TARGET inline void tile(const uint16_t* a, int64_t lda, const uint32_t* b, int64_t ldb,
                                   int64_t kp, float* c, int64_t ldc, const float* row_scale,
                                   __mmask16 last) {
  __m512 acc[R][NB];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) acc[r][n] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kp; ++p) {
    __m512bh bv[NB];
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n)
      bv[n] = (__m512bh)(n + 1 < NB ? _mm512_loadu_si512(b + p * ldb + 16 * n)
                                    : _mm512_maskz_loadu_epi32(last, b + p * ldb + 16 * n));
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * p, sizeof(pair));
      const auto av = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 2
      for (int n = 0; n < NB; ++n) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], av, bv[n]);
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

constexpr int kRows = 12;  // 12 x 2 accumulators + 2 B vectors + 1 broadcast: 27 of 32 zmm

template <int NB>
SPARQ_BF16_TARGET void tile_rows(int64_t rows, const uint16_t* a, int64_t lda, const uint32_t* b,
                                 int64_t ldb, int64_t kp, float* c, int64_t ldc,
                                 const float* row_scale, __mmask16 last) {
  switch (rows) {
#define SPARQ_ROWS(n) \
  case n:             \
    return tile<n, NB>(a, lda, b, ldb, kp, c, ldc, row_scale, last);
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
      return tile<kRows, NB>(a, lda, b, ldb, kp, c, ldc, row_scale, last);
  }
}

// C[m x n] = diag(row_scale) A[m x 2 kp] B[kp x n] for any n, in tiles of 12 rows x 32 columns.
SPARQ_BF16_TARGET void gemm_bf16(int64_t m, int64_t n, int64_t kp, const uint16_t* a, int64_t lda,
                                 const uint32_t* b, int64_t ldb, float* c, int64_t ldc,
                                 const float* row_scale) {
  for (int64_t i = 0; i < m; i += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, m - i);
    const float* scale = row_scale ? row_scale + i : nullptr;
    int64_t j = 0;
    for (; j + 32 <= n; j += 32)
      tile_rows<2>(rows, a + i * lda, lda, b + j, ldb, kp, c + i * ldc + j, ldc, scale, 0xffff);
    if (j < n) {
      const int64_t left = n - j;
      const auto last = static_cast<__mmask16>(left % 16 == 0 ? 0xffff : (1u << (left % 16)) - 1);
      if (left > 16)
        tile_rows<2>(rows, a + i * lda, lda, b + j, ldb, kp, c + i * ldc + j, ldc, scale, last);
      else
        tile_rows<1>(rows, a + i * lda, lda, b + j, ldb, kp, c + i * ldc + j, ldc, scale, last);
    }
  }
}

// Rows r0 and r1 (r1 may be null: zeros) of n floats interleaved as bf16 pairs: out[e] =
// bf16(r0[e]) | bf16(r1[e]) << 16.
SPARQ_BF16_TARGET void interleave_pair(const float* r0, const float* r1, int64_t n, uint32_t* out) {
  for (int64_t e = 0; e < n; e += 16) {
    const auto m = static_cast<__mmask16>(n - e >= 16 ? 0xffff : (1u << (n - e)) - 1);
    const __m512i lo = _mm512_cvtepu16_epi32(to_bf16(_mm512_maskz_loadu_ps(m, r0 + e)));
    const __m512i hi = r1 ? _mm512_cvtepu16_epi32(to_bf16(_mm512_maskz_loadu_ps(m, r1 + e)))
                          : _mm512_setzero_si512();
    _mm512_mask_storeu_epi32(out + e, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
  }
}

}  // namespace

// Scores S = Q K^T from Q in bf16 rows and K^T packed in pairs of head dimensions; the fp32
// softmax; ctx = P V from P in bf16 rows and V packed in pairs of keys, 1 / (row sum) applied at
// the store. d must be even (the pairs of Q's rows) and at most kMaxBf16HeadDim.
SPARQ_BF16_TARGET void attention_head_bf16_avx512(const float* q, const float* k, const float* v,
                                                  int64_t len, int64_t d, int64_t stride,
                                                  float* ctx, int64_t ctx_stride,
                                                  std::vector<float>& scratch) {
  const int64_t len16 = (len + 15) / 16 * 16, dp = d / 2, lenp = (len + 1) / 2;
  // scores [len x len16] | inverse row sums [len] | Q bf16 [len x d] | K^T pairs [dp x len16] |
  // P bf16 [len x len16] | V pairs [lenp x d]; the bf16 and pair buffers take half a float and
  // one float per element.
  const size_t need =
      static_cast<size_t>(len * len16 + len + len * dp + dp * len16 + len * len16 / 2 + lenp * d);
  if (scratch.size() < need) scratch.resize(need);
  float* scores = scratch.data();
  float* inv = scores + len * len16;
  auto* qb = reinterpret_cast<uint16_t*>(inv + len);
  auto* kt = reinterpret_cast<uint32_t*>(qb + len * d);
  auto* pb = reinterpret_cast<uint16_t*>(kt + dp * len16);
  auto* vp = reinterpret_cast<uint32_t*>(pb + len * len16);

  for (int64_t i = 0; i < len; ++i) row_to_bf16(q + i * stride, qb + i * d, d);
  // K^T in pairs: kt[p][j] = K[j][2p], K[j][2p + 1]; keys from len to len16 are zero.
  alignas(64) uint16_t krow[kMaxBf16HeadDim];
  for (int64_t j = 0; j < len; ++j) {
    row_to_bf16(k + j * stride, krow, d);
    for (int64_t p = 0; p < dp; ++p) std::memcpy(kt + p * len16 + j, krow + 2 * p, 4);
  }
  for (int64_t p = 0; p < dp; ++p) std::fill(kt + p * len16 + len, kt + (p + 1) * len16, 0u);
  gemm_bf16(len, len16, dp, qb, d, kt, len16, scores, len16, nullptr);

  softmax_rows_to_bf16(scores, len, len, len16, 1.0f / std::sqrt(static_cast<float>(d)), pb, inv);
  for (int64_t p = 0; p < lenp; ++p) {
    const int64_t j = 2 * p;
    interleave_pair(v + j * stride, j + 1 < len ? v + (j + 1) * stride : nullptr, d, vp + p * d);
  }
  gemm_bf16(len, d, lenp, pb, len16, vp, d, ctx, ctx_stride, inv);
}

}  // namespace sparq::models::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
