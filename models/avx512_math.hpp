// Small AVX-512 building blocks shared by the attention and the decoder's element-wise ops, for
// code compiled with AVX-512F target attributes (the 16-lane twins of avx2_math.hpp).
#pragma once

#include <immintrin.h>

namespace sparq::models {

// exp(x) for x <= 0, as exp_nonpositive in avx2_math.hpp: 2^k e^r, k = round(x log2 e), |r| <=
// ln 2 / 2, e^r by a degree-6 polynomial (relative error below 2e-7); inputs below -87 give ~0.
__attribute__((target("avx512f,avx2,fma"))) inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  // p 2^k in one vscalefps (k is an integer in [-126, 0], so exact as the product with 2^k built
  // in the exponent bits).
  return _mm512_scalef_ps(p, k);
}

// The low n (0..16) lanes.
inline __mmask16 first_lanes(long n) {
  return static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1);
}

}  // namespace sparq::models
