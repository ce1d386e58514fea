#include <immintrin.h>

#include "src/int8_nm_kernel.hpp"

namespace sparq {
namespace {

// Shuffle indices (window-relative within each 16-column lane) of the 32 kept values of one
// window, from its 8 position bytes; lane 0's upper half and lane 1's upper half hold the
// indices meant for the window's second 32 columns.
__attribute__((target("avx2"))) inline __m256i shuffle_indices(const uint8_t* positions) {
  const __m128i m = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(positions));
  const __m128i low = _mm_and_si128(m, _mm_set1_epi8(0x0f));
  const __m128i high = _mm_and_si128(_mm_srli_epi16(m, 4), _mm_set1_epi8(0x0f));
  const __m256i nibble = _mm256_broadcastsi128_si256(_mm_unpacklo_epi8(low, high));  // block b
  // Each slot's block: lane 0 blocks 0-3 then 8-11, lane 1 blocks 4-7 then 12-15, two slots each.
  const __m256i by_slot = _mm256_shuffle_epi8(
      nibble, _mm256_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 8, 8, 9, 9, 10, 10, 11, 11, 4, 4, 5, 5, 6, 6,
                               7, 7, 12, 12, 13, 13, 14, 14, 15, 15));
  const __m256i first =
      _mm256_shuffle_epi8(_mm256_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2,
                                           3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3),
                          by_slot);  // n & 3
  const __m256i second =
      _mm256_shuffle_epi8(_mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0, 0,
                                           0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                          by_slot);  // n >> 2
  const __m256i odd = _mm256_set1_epi16(static_cast<short>(0xff00));
  const __m256i position = _mm256_blendv_epi8(first, second, odd);
  // + 4 * (block within its 16-column lane).
  const __m256i base = _mm256_setr_epi8(0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12, 0, 0, 4,
                                        4, 8, 8, 12, 12, 0, 0, 4, 4, 8, 8, 12, 12);
  return _mm256_add_epi8(position, base);
}

__attribute__((target("avx2"))) inline int32_t horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

template <int kTokens>
__attribute__((target("avx2"))) void rows(const sparse::Int8NmWeights& w, const int8_t* x,
                                          int64_t x_stride, int64_t r0, int64_t r1, int32_t* sums) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t r = r0; r < r1; ++r) {
    __m256i acc[kTokens];
    for (int t = 0; t < kTokens; ++t) acc[t] = _mm256_setzero_si256();
    const uint8_t* entry = w.entries.data() + r * w.windows * sparse::kNmWindowBytes;
    for (int64_t win = 0; win < w.windows; ++win, entry += sparse::kNmWindowBytes) {
      const __m256i idx = shuffle_indices(entry + 32);
      const __m256i idx_upper = _mm256_shuffle_epi32(idx, 0x4e);
      const __m256i weights = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(entry));
      for (int t = 0; t < kTokens; ++t) {
        const int8_t* xw = x + t * x_stride + win * sparse::kNmWindow;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xw));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xw + 32));
        const __m256i picked =
            _mm256_unpacklo_epi64(_mm256_shuffle_epi8(lo, idx), _mm256_shuffle_epi8(hi, idx_upper));
        const __m256i products =
            _mm256_maddubs_epi16(_mm256_abs_epi8(picked), _mm256_sign_epi8(weights, picked));
        acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(products, ones));
      }
    }
    for (int t = 0; t < kTokens; ++t) sums[t * (r1 - r0) + (r - r0)] = horizontal_sum(acc[t]);
  }
}

}  // namespace

__attribute__((target("avx2"))) void int8_nm_rows_avx2(const sparse::Int8NmWeights& w,
                                                       const int8_t* x, int64_t x_stride,
                                                       int tokens, int64_t r0, int64_t r1,
                                                       int32_t* sums) {
  switch (tokens) {
    case 1:
      return rows<1>(w, x, x_stride, r0, r1, sums);
    case 2:
      return rows<2>(w, x, x_stride, r0, r1, sums);
    case 3:
      return rows<3>(w, x, x_stride, r0, r1, sums);
    default:
      return rows<4>(w, x, x_stride, r0, r1, sums);
  }
}

}  // namespace sparq
