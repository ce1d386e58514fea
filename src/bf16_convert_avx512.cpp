// Compiled for AVX-512F (target attributes) and only called after a CPUID check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// own -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "src/bf16_convert.hpp"
#include "src/bf16_round_avx512.hpp"

namespace sparq::detail {

__attribute__((target("avx512f"))) void convert_to_bf16_avx512(const float* src, uint16_t* dst,
                                                               int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i rounded = round_bf16_high(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
  }
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i rounded = round_bf16_high(_mm512_maskz_loadu_ps(tail, src + i));
    _mm512_mask_cvtepi32_storeu_epi16(dst + i, tail, _mm512_srli_epi32(rounded, 16));
  }
}

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
