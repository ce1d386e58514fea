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
#include "src/transpose16_avx512.hpp"

// GCC 12's shift and conversion intrinsics pass _mm512_undefined_epi32() as their unused merge
// source, and its own -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SPARQ_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma")))

namespace sparq::models::detail {
namespace {

// 16 floats rounded to bf16 to nearest even by vcvtneps2bf16 (a NaN stays a quiet NaN). Unlike
// sparse::to_bf16, which the portable twin uses, it flushes denormals (below 1.2e-38) to zero;
// for attention's operands that moves no output, and the instruction replaces nine integer ones
// (the softmax's bf16 stores took 40 % of its time with them on Zen 4).
SPARQ_BF16_TARGET inline __m256i to_bf16(__m512 v) { return (__m256i)_mm512_cvtneps_pbh(v); }

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
  // vcvtne2ps2bf16 puts r0's 16 values in the low half, r1's in the high one; vpermw pairs them.
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int64_t e = 0; e < n; e += 16) {
    const __mmask16 m = first_lanes(n - e);
    const __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1 + e) : _mm512_setzero_ps();
    const auto both = (__m512i)_mm512_cvtne2ps_pbh(hi, _mm512_maskz_loadu_ps(m, r0 + e));
    _mm512_mask_storeu_epi32(out + e, m, _mm512_permutexvar_epi16(pairs, both));
  }
}

// K^T in pairs of head dimensions: kt[p][j] = bf16 K[j][2p], K[j][2p + 1] for j < len, zero for
// the keys len..len16. Per block of 16 keys the rows go to bf16 in `rows` ([16][dp16] dwords,
// zero-padded), then 16 x 16 transposes (a dword copy per key and pair took a tenth of a
// BERT-base layer's attention on Zen 4; vpgatherdd, 60 % of that).
SPARQ_BF16_TARGET void pack_keys(const float* k, int64_t len, int64_t len16, int64_t d,
                                 int64_t stride, uint32_t* rows, uint32_t* kt) {
  const int64_t dp = d / 2, dp16 = (dp + 15) / 16 * 16;
  for (int64_t j0 = 0; j0 < len16; j0 += 16) {
    const int64_t keys = std::min<int64_t>(16, len - j0);
    for (int64_t j = 0; j < 16; ++j) {
      uint32_t* row = rows + j * dp16;
      const int64_t from = j < keys ? dp : 0;
      if (j < keys) row_to_bf16(k + (j0 + j) * stride, reinterpret_cast<uint16_t*>(row), d);
      std::fill(row + from, row + dp16, 0u);
    }
    for (int64_t p0 = 0; p0 < dp; p0 += 16) {
      __m512i r[16];
      for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_si512(rows + j * dp16 + p0);
      sparq::detail::transpose16(r);
      for (int64_t i = 0; i < std::min<int64_t>(16, dp - p0); ++i)
        _mm512_storeu_si512(kt + (p0 + i) * len16 + j0, r[i]);
    }
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
  // P bf16 [len x len16] | V pairs [lenp x d] | 16 keys' rows in bf16 [16 x dp16]; the bf16 and
  // pair buffers take half a float and one float per element.
  const int64_t dp16 = (dp + 15) / 16 * 16;
  const size_t need = static_cast<size_t>(len * len16 + len + len * dp + dp * len16 +
                                          len * len16 / 2 + lenp * d + 16 * dp16);
  if (scratch.size() < need) scratch.resize(need);
  float* scores = scratch.data();
  float* inv = scores + len * len16;
  auto* qb = reinterpret_cast<uint16_t*>(inv + len);
  auto* kt = reinterpret_cast<uint32_t*>(qb + len * d);
  auto* pb = reinterpret_cast<uint16_t*>(kt + dp * len16);
  auto* vp = reinterpret_cast<uint32_t*>(pb + len * len16);
  uint32_t* key_rows = vp + lenp * d;

  for (int64_t i = 0; i < len; ++i) row_to_bf16(q + i * stride, qb + i * d, d);
  pack_keys(k, len, len16, d, stride, key_rows, kt);
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
