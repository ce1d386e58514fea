// AVX-512 input lists: per 16 inputs, the non-zero mask (a byte test; a compare after rounding to
// bf16), the column numbers and the values (int8 widened to dwords) compressed in registers and
// stored under a mask of the count.
// Compressing to registers, not `vpcompressd` to memory: that form is microcoded and slow on
// Zen 4. Compiled with target attributes and called only after a CPUID check.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <bit>

#include "src/bf16_round_avx512.hpp"
#include "src/input_list.hpp"

namespace sparq::detail {

#define SPARQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

SPARQ_AVX512 NonzeroList list_nonzero_s8_avx512(const int8_t* s8, int64_t in, int32_t* columns,
                                                int8_t* values) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  // The sum as unsigned bytes (value + 128) by vpsadbw, the bias taken off at the end.
  // The sum as unsigned bytes (value + 128, zeros loaded past `in` included) by vpsadbw, the
  // bias taken off at the end.
  __m128i biased_sum = _mm_setzero_si128();
  int64_t n = 0;
  for (int64_t c = 0; c < in; c += 16) {
    const int64_t left = in - c;
    const auto loaded = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    const __m128i v = _mm_maskz_loadu_epi8(loaded, s8 + c);
    const __mmask16 nonzero = _mm_test_epi8_mask(v, v);
    biased_sum =
        _mm_add_epi64(biased_sum, _mm_sad_epu8(_mm_xor_si128(v, flip), _mm_setzero_si128()));
    const int count = std::popcount(static_cast<unsigned>(nonzero));
    const auto first = static_cast<__mmask16>((1u << count) - 1);
    const __m512i column = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(c)));
    _mm512_mask_storeu_epi32(columns + n, first, _mm512_maskz_compress_epi32(nonzero, column));
    _mm512_mask_cvtepi32_storeu_epi8(values + n, first,
                                     _mm512_maskz_compress_epi32(nonzero, _mm512_cvtepi8_epi32(v)));
    n += count;
  }
  const int64_t groups = (in + 15) / 16;
  const int64_t total = _mm_cvtsi128_si64(biased_sum) + _mm_extract_epi64(biased_sum, 1);
  return {n, static_cast<int32_t>(total - 128 * 16 * groups)};
}

SPARQ_AVX512 int64_t list_nonzero_bf16_avx512(const float* x, int64_t in, int32_t* columns,
                                              float* values) {
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i high = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
  int64_t n = 0;
  for (int64_t c = 0; c < in; c += 16) {
    const int64_t left = in - c;
    const auto loaded = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    const __m512 v = _mm512_castsi512_ps(
        _mm512_and_si512(round_bf16_high(_mm512_maskz_loadu_ps(loaded, x + c)), high));
    // Not equal, unordered: NaNs are listed, +0 and -0 are not.
    const __mmask16 nonzero = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    const int count = std::popcount(static_cast<unsigned>(nonzero));
    const auto first = static_cast<__mmask16>((1u << count) - 1);
    const __m512i column = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(c)));
    _mm512_mask_storeu_epi32(columns + n, first, _mm512_maskz_compress_epi32(nonzero, column));
    _mm512_mask_storeu_ps(values + n, first, _mm512_maskz_compress_ps(nonzero, v));
    n += count;
  }
  return n;
}

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
