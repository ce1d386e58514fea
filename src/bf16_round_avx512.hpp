// fp32 -> bf16 rounding on 16 lanes, exactly as sparse::to_bf16. Include only from translation
// units compiled for AVX-512 code paths (the function carries its own target attribute and is
// called after a CPUID check).
#pragma once

#include <immintrin.h>

namespace sparq::detail {

// 16 floats rounded to bf16 as sparse::to_bf16 (nearest even; a NaN keeps its top bits, made
// quiet), each in the upper half of its dword (the lower half holds rounding garbage).
__attribute__((target("avx512f"))) inline __m512i round_bf16_high(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  return _mm512_mask_or_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), bits,
                              _mm512_set1_epi32(0x00400000));
}

}  // namespace sparq::detail
