// Compiled for AVX2 (target attributes) and only called after a CPUID check.
#include <immintrin.h>

#include "sparse/bf16.hpp"
#include "src/bf16_convert.hpp"

namespace sparq::detail {

__attribute__((target("avx2"))) void convert_to_bf16_avx2(const float* src, uint16_t* dst,
                                                          int64_t n) {
  const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
  const __m256i quiet = _mm256_set1_epi32(0x00400000);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(src + i);
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, bias)), 16);
    const __m256i nan = _mm256_srli_epi32(_mm256_or_si256(bits, quiet), 16);
    const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    const __m256i h = _mm256_blendv_epi8(rounded, nan, is_nan);
    // 8 dwords (< 2^16) -> 8 words, in order.
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), packed);
  }
  for (; i < n; ++i) dst[i] = sparse::to_bf16(src[i]);
}

}  // namespace sparq::detail
