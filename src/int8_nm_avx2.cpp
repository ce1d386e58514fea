#include <immintrin.h>

#include <cstring>

#include "src/int8_nm_kernel.hpp"

namespace sparq {
namespace {

// Shuffle indices (column within the 16-column lane of `lo` for the lane's first 8 slots, of `hi`
// for its last 8) of the 32 kept values of one window, from its 8 position bytes: byte
// 4 * lane + s % 4 goes to every slot s of its lane with s % 4 equal, the per-dword shift brings
// the slot's 2 bits down, and the block's first column is added.
__attribute__((target("avx2"))) inline __m256i shuffle_indices(const uint8_t* positions) {
  int64_t bits;
  std::memcpy(&bits, positions, sizeof bits);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi64x(bits), _mm256_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4,
                                                 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7));
  const __m256i position = _mm256_and_si256(
      _mm256_srlv_epi32(spread, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)), _mm256_set1_epi8(3));
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
      const __m256i weights = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(entry));
      for (int t = 0; t < kTokens; ++t) {
        const int8_t* xw = x + t * x_stride + win * sparse::kNmWindow;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xw));
        const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xw + 32));
        // Each lane's first 8 slots pick from lo's lane, its last 8 from hi's.
        const __m256i picked =
            _mm256_blend_epi32(_mm256_shuffle_epi8(lo, idx), _mm256_shuffle_epi8(hi, idx), 0xcc);
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
