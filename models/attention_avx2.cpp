// AVX2 attention for one sequence and head (see attention.hpp). Compiled with target attributes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "models/attention.hpp"
#include "models/avx2_math.hpp"

namespace sparq::models::detail {
namespace {

// C[R x 8 NB] = scale_r * (A[R x K] B[K x 8 NB]): A broadcast by element (row stride lda), B
// rows of 8 NB floats (row stride ldb), all in registers: R * NB accumulators, each B load
// feeding R multiply-adds, so the loop is bound by FMA throughput rather than loads or latency.
template <int R, int NB>
__attribute__((target("avx2,fma"))) inline void tile(const float* a, int64_t lda, const float* b,
                                                     int64_t ldb, int64_t k, float* c, int64_t ldc,
                                                     const float* row_scale) {
  // Fully unrolled so that the accumulators live in registers (GCC keeps the array in memory
  // otherwise).
  __m256 acc[R][NB];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) acc[r][n] = _mm256_setzero_ps();
  for (int64_t e = 0; e < k; ++e) {
    __m256 bv[NB];
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) bv[n] = _mm256_loadu_ps(b + e * ldb + 8 * n);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + e);
#pragma GCC unroll 2
      for (int n = 0; n < NB; ++n) acc[r][n] = _mm256_fmadd_ps(av, bv[n], acc[r][n]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 s = _mm256_set1_ps(row_scale ? row_scale[r] : 1.0f);
#pragma GCC unroll 2
    for (int n = 0; n < NB; ++n) _mm256_storeu_ps(c + r * ldc + 8 * n, _mm256_mul_ps(acc[r][n], s));
  }
}

// dst rows r = 0..7 (stride ldd) get src column r of 8 rows (stride lds): an 8x8 transpose in
// registers.
__attribute__((target("avx2,fma"))) inline void transpose8x8(const float* src, int64_t lds,
                                                             float* dst, int64_t ldd) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * lds);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ldd, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

constexpr int kRows = 6;  // 6 x 2 accumulators + 2 B vectors + 1 broadcast: 15 of 16 registers

template <int NB>
__attribute__((target("avx2,fma"))) void tile_rows(int64_t rows, const float* a, int64_t lda,
                                                   const float* b, int64_t ldb, int64_t k, float* c,
                                                   int64_t ldc, const float* row_scale) {
  switch (rows) {
    case 1:
      return tile<1, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
    case 2:
      return tile<2, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
    case 3:
      return tile<3, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
    case 4:
      return tile<4, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
    case 5:
      return tile<5, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
    default:
      return tile<6, NB>(a, lda, b, ldb, k, c, ldc, row_scale);
  }
}

}  // namespace

// C[m x n] = diag(row_scale) A[m x k] B[k x n] for n a multiple of 8, in tiles of 6 rows x 16
// (or 8) columns.
__attribute__((target("avx2,fma"))) void small_gemm_avx2(int64_t m, int64_t n, int64_t k,
                                                         const float* a, int64_t lda,
                                                         const float* b, int64_t ldb, float* c,
                                                         int64_t ldc, const float* row_scale) {
  for (int64_t i = 0; i < m; i += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, m - i);
    const float* scale = row_scale ? row_scale + i : nullptr;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
      tile_rows<2>(rows, a + i * lda, lda, b + j, ldb, k, c + i * ldc + j, ldc, scale);
    if (j < n) tile_rows<1>(rows, a + i * lda, lda, b + j, ldb, k, c + i * ldc + j, ldc, scale);
  }
}

// Row-wise softmax of scores [rows x width] (row stride width, width a multiple of 8 and >= len)
// over the first len columns: p = exp((s - max) scale), the columns from len on set to 0, and
// inv[i] = 1 / (row i's sum).
__attribute__((target("avx2,fma"))) void softmax_rows_avx2(float* scores, int64_t rows, int64_t len,
                                                           int64_t width, float scale, float* inv) {
  const __m256 vscale = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < rows; ++i) {
    float* p = scores + i * width;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(p + j));
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, vmax);
    float m = lanes[0];
    for (float x : lanes) m = std::max(m, x);
    for (; j < len; ++j) m = std::max(m, p[j]);
    // p[j] = exp((p[j] - max) scale); the padding keys (j >= len) become 0.
    const __m256 vm = _mm256_set1_ps(m * scale);
    __m256 vsum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= len; j += 8) {
      const __m256 e = exp_nonpositive(_mm256_fmsub_ps(_mm256_loadu_ps(p + j), vscale, vm));
      _mm256_storeu_ps(p + j, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    if (j < len) {
      __m256 e = exp_nonpositive(_mm256_fmsub_ps(_mm256_loadu_ps(p + j), vscale, vm));
      _mm256_store_ps(lanes, e);
      for (int64_t l = len - j; l < 8; ++l) lanes[l] = 0.0f;
      e = _mm256_load_ps(lanes);
      _mm256_storeu_ps(p + j, e);
      vsum = _mm256_add_ps(vsum, e);
      j += 8;
    }
    std::fill(p + j, p + width, 0.0f);
    inv[i] = 1.0f / horizontal_sum(vsum);
  }
}

namespace {

// Scores S = Q K^T (K transposed into scratch, keys padded to a multiple of 8 with zeros), a
// row-wise softmax, then ctx = P V with 1 / (row sum) applied at the store. Both products run on
// register tiles (small_gemm). Head dimensions that are no multiple of 8 go through V padded
// into scratch.
// The products run on `gemm` and the softmax on `softmax` (the AVX2 ones, or their AVX-512
// twins).
using Softmax = void (*)(float*, int64_t, int64_t, int64_t, float, float*);
__attribute__((target("avx2,fma"))) void attention_head_vector(
    const float* q, const float* k, const float* v, int64_t len, int64_t d, int64_t stride,
    float* ctx, int64_t ctx_stride, std::vector<float>& scratch, SmallGemm gemm, Softmax softmax) {
  const int64_t len8 = (len + 7) / 8 * 8, d8 = (d + 7) / 8 * 8;
  const bool pad_v = d8 != d;
  // kt [d x len8] | scores [len x len8] | inverse row sums [len] | padded V [len x d8] and
  // padded ctx [len x d8] when d is no multiple of 8.
  const size_t need = static_cast<size_t>(d * len8 + len * len8 + len) +
                      (pad_v ? static_cast<size_t>(2 * len * d8) : 0);
  if (scratch.size() < need) scratch.resize(need);
  float* kt = scratch.data();
  float* scores = kt + d * len8;
  float* inv = scores + len * len8;
  const int64_t len_full = len / 8 * 8, d_full = d / 8 * 8;
  for (int64_t j = 0; j < len_full; j += 8)
    for (int64_t e = 0; e < d_full; e += 8)
      transpose8x8(k + j * stride + e, stride, kt + e * len8 + j, len8);
  for (int64_t e = 0; e < d; ++e) {
    float* row = kt + e * len8;
    for (int64_t j = e < d_full ? len_full : 0; j < len; ++j) row[j] = k[j * stride + e];
    std::fill(row + len, row + len8, 0.0f);
  }
  gemm(len, len8, d, q, stride, kt, len8, scores, len8, nullptr);

  softmax(scores, len, len, len8, 1.0f / std::sqrt(static_cast<float>(d)), inv);

  if (!pad_v) {
    gemm(len, d, len, scores, len8, v, stride, ctx, ctx_stride, inv);
    return;
  }
  float* vp = inv + len;
  float* out = vp + len * d8;
  for (int64_t j = 0; j < len; ++j) {
    std::copy_n(v + j * stride, d, vp + j * d8);
    std::fill(vp + j * d8 + d, vp + (j + 1) * d8, 0.0f);
  }
  gemm(len, d8, len, scores, len8, vp, d8, out, d8, inv);
  for (int64_t i = 0; i < len; ++i) std::copy_n(out + i * d8, d, ctx + i * ctx_stride);
}

}  // namespace

void attention_head_avx2(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                         int64_t stride, float* ctx, int64_t ctx_stride,
                         std::vector<float>& scratch) {
  attention_head_vector(q, k, v, len, d, stride, ctx, ctx_stride, scratch, small_gemm_avx2,
                        softmax_rows_avx2);
}

void attention_head_avx512(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                           int64_t stride, float* ctx, int64_t ctx_stride,
                           std::vector<float>& scratch) {
  attention_head_vector(q, k, v, len, d, stride, ctx, ctx_stride, scratch, small_gemm_avx512,
                        softmax_rows_avx512);
}

}  // namespace sparq::models::detail
