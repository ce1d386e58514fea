// AVX2 layout of fp32 activations for the f32 tile kernels: per slice and 8 input columns, the 8
// tokens of each group of 8 slots (e.g. tokens 0-3 + 8-11, then 4-7 + 12-15 for 16-token slices)
// are loaded as 8 rows, transposed 8 x 8 in registers and stored as 8 columns.
// Compiled for AVX2 (target attributes) and only called after a CPUID check.
#include <immintrin.h>

#include "sparse/bf16.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/checks.hpp"
#include "sparse/f32_block_pack.hpp"
#include "src/f32_activation_layout.hpp"

namespace sparq::detail {
namespace {

// Round to the nearest bf16, ties to even, as sparse::to_bf16 (NaNs stay quiet NaNs).
__attribute__((target("avx2"))) __m256 round_bf16(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_and_si256(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))),
                       _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
  const __m256i nan = _mm256_and_si256(_mm256_or_si256(bits, _mm256_set1_epi32(0x00400000)),
                                       _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
  const __m256 is_nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_castsi256_ps(rounded), _mm256_castsi256_ps(nan), is_nan);
}

__attribute__((target("avx2"))) void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

}  // namespace

__attribute__((target("avx2"))) void layout_f32_activations_avx2(const float* x, int64_t tokens,
                                                                 int64_t in, int slice_tokens,
                                                                 bool round_to_bf16, float* dst) {
  const int64_t n = slice_tokens;
  sparse::require(n % 8 == 0, "layout_f32_activations_avx2: slices of a multiple of 8 tokens");
  const int64_t slices = sparse::ceil_div(tokens, n);
  const int64_t full = in / 8 * 8;
  for (int64_t s = 0; s < slices; ++s) {
    float* slice = dst + s * in * n;
    for (int64_t group = 0; group < n / 8; ++group) {
      const float* rows[8];
      slot_rows(
          x, tokens, in, s * n, static_cast<int>(8 * group), 8,
          [n](int slot) { return sparse::f32_slice_token(static_cast<int>(n), slot); }, rows);
      for (int64_t i = 0; i < full; i += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; ++k) {
          r[k] = rows[k] ? _mm256_loadu_ps(rows[k] + i) : _mm256_setzero_ps();
          if (round_to_bf16) r[k] = round_bf16(r[k]);
        }
        transpose8(r);
        for (int c = 0; c < 8; ++c) _mm256_storeu_ps(slice + (i + c) * n + 8 * group, r[c]);
      }
    }
  }
  // The last in % 8 columns, one element at a time.
  if (full < in) {
    for (int64_t s = 0; s < slices; ++s)
      for (int slot = 0; slot < n; ++slot) {
        const int64_t t = s * n + sparse::f32_slice_token(static_cast<int>(n), slot);
        for (int64_t i = full; i < in; ++i) {
          float v = t < tokens ? x[t * in + i] : 0.0f;
          if (round_to_bf16 && t < tokens) v = _mm256_cvtss_f32(round_bf16(_mm256_set1_ps(v)));
          dst[(s * in + i) * n + slot] = v;
        }
      }
  }
}

__attribute__((target("avx2"))) void layout_bf16_activations_avx2(const float* x, int64_t tokens,
                                                                  int64_t in, uint16_t* dst) {
  constexpr int64_t n = sparse::kBf16SliceTokens;
  const int64_t slices = sparse::ceil_div(tokens, n);
  const int64_t full = in / 8 * 8;
  for (int64_t s = 0; s < slices; ++s) {
    uint16_t* slice = dst + s * in * n;
    for (int group = 0; group < n / 8; ++group) {
      const float* rows[8];
      slot_rows(x, tokens, in, s * n, 8 * group, 8, sparse::bf16_slice_token, rows);
      for (int64_t i = 0; i < full; i += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; ++k)
          r[k] = round_bf16(rows[k] ? _mm256_loadu_ps(rows[k] + i) : _mm256_setzero_ps());
        transpose8(r);
        for (int c = 0; c < 8; ++c) {
          // The rounded values' upper halves are the bf16 bits: 8 words of one column.
          const __m256i high = _mm256_srli_epi32(_mm256_castps_si256(r[c]), 16);
          const __m128i words =
              _mm_packus_epi32(_mm256_castsi256_si128(high), _mm256_extracti128_si256(high, 1));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(slice + (i + c) * n + 8 * group), words);
        }
      }
    }
  }
  if (full < in) {
    for (int64_t s = 0; s < slices; ++s)
      for (int slot = 0; slot < n; ++slot) {
        const int64_t t = s * n + sparse::bf16_slice_token(slot);
        for (int64_t i = full; i < in; ++i)
          dst[(s * in + i) * n + slot] = t < tokens ? sparse::to_bf16(x[t * in + i]) : 0;
      }
  }
}

}  // namespace sparq::detail
