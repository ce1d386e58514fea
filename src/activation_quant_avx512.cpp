// AVX-512 activation quantizer for the quads_u8 layout (the AVX-512 VNNI kernels): per 16 tokens
// x 16 input columns, 16 row loads, scale and round, a 16 x 16 dword transpose in registers, and
// one saturating vpmovsdb per column: 16 tokens' u8 bytes of that column. About a quarter of the
// AVX2 path's shuffles per element (8 x 8 transposes and packs). Compiled with target attributes
// and called only after a CPUID check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// own -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "sparq/error.hpp"
#include "src/activation_quant.hpp"

namespace sparq::detail {
namespace {

#define SPARQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// Horizontal max and sum of 16 lanes (by hand: GCC 12's _mm512_reduce_* trip its own
// -Wmaybe-uninitialized).
SPARQ_AVX512 __m128 fold_to_128(__m512 v, bool max) {
  const __m512 a = _mm512_shuffle_f32x4(v, v, 0x4e);  // swap 256-bit halves
  v = max ? _mm512_max_ps(v, a) : _mm512_add_ps(v, a);
  const __m512 b = _mm512_shuffle_f32x4(v, v, 0xb1);  // swap 128-bit lanes within halves
  v = max ? _mm512_max_ps(v, b) : _mm512_add_ps(v, b);
  return _mm512_castps512_ps128(v);
}

SPARQ_AVX512 float lanes_max(__m512 v) {
  __m128 s = fold_to_128(v, true);
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

SPARQ_AVX512 float lanes_sum(__m512 v) {
  __m128 s = fold_to_128(v, false);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// max |row[i]|; NaN when any element is NaN or infinite (x * 0 is NaN exactly for those).
SPARQ_AVX512 float abs_max(const float* row, int64_t n) {
  __m512 m = _mm512_setzero_ps(), poison = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(row + i);
    m = _mm512_max_ps(m, _mm512_abs_ps(v));
    poison = _mm512_add_ps(poison, _mm512_mul_ps(v, _mm512_setzero_ps()));
  }
  if (i < n) {
    const auto tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(tail, row + i);
    m = _mm512_max_ps(m, _mm512_abs_ps(v));
    poison = _mm512_add_ps(poison, _mm512_mul_ps(v, _mm512_setzero_ps()));
  }
  // Any NaN lane makes the sum NaN.
  const float any_bad = lanes_sum(poison);
  return any_bad == 0.0f ? lanes_max(m) : std::numeric_limits<float>::quiet_NaN();
}

// r[i] = row i of a 16 x 16 dword matrix -> r[j] = column j.
SPARQ_AVX512 void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // Now r[4a + b] holds, in 128-bit lane L, rows 4L' .. (lane L of rows 4a..4a+3, column 4L + b):
  // swap 128-bit lanes across the groups of four.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

}  // namespace

SPARQ_AVX512 void quantize_activations_avx512(const float* x, int64_t tokens, int64_t in,
                                              uint8_t* xq, float* scales) {
  constexpr int64_t kChunk = sparse::kChunkTokens;
  const sparse::Int8Layout layout = sparse::Int8Layout::quads_u8;
  const int64_t chunks = (tokens + kChunk - 1) / kChunk, chunk_bytes = kChunk * in;
  const __m512i bias = _mm512_set1_epi32(128);
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t t0 = ch * kChunk, valid = std::min<int64_t>(kChunk, tokens - t0);
    uint8_t* chunk = xq + ch * chunk_bytes;
    float inv[kChunk] = {}, token_scale[kChunk] = {};
    // 16 tokens at a time: their maxima, then their quantization while the rows are still in
    // L2 (a chunk of 64 rows of 3072 floats is 768 KiB: measuring all first read it twice from L3).
    for (int64_t tb = 0; tb < kChunk; tb += 16) {
      for (int64_t t = tb; t < std::min(valid, tb + 16); ++t) {
        float amax = abs_max(x + (t0 + t) * in, in);
        if (std::isnan(amax))
          throw InvalidArgument("forward: x[" + std::to_string(t0 + t) +
                                "] holds a value that is not finite");
        inv[t] = amax > 0.0f ? 127.0f / amax : 0.0f;
        if (!(inv[t] <= std::numeric_limits<float>::max()))
          inv[t] = amax = 0.0f;  // as quantize_rows
        token_scale[t] = amax / 127.0f;
      }
      // Padding tokens are u8 128 (q = 0): rows of zeros, shifted like the real ones.
      for (int64_t c = 0; c < in; c += 16) {
        const auto cols = static_cast<__mmask16>(in - c >= 16 ? 0xffff : (1u << (in - c)) - 1);
        __m512i r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t t = tb + j;
          if (t >= valid) {
            r[j] = _mm512_setzero_si512();
            continue;
          }
          const __m512 v = _mm512_maskz_loadu_ps(cols, x + (t0 + t) * in + c);
          // Round half to even (MXCSR's default), as std::nearbyint; |v * inv| <= 127.
          r[j] = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(inv[t])));
        }
        transpose16(r);  // r[k] = column c + k, tokens tb..tb+15
        const int64_t n = std::min<int64_t>(16, in - c);
        for (int64_t k = 0; k < n; ++k)
          _mm_storeu_si128(reinterpret_cast<__m128i*>(chunk + (c + k) * kChunk + tb),
                           _mm512_cvtusepi32_epi8(_mm512_add_epi32(r[k], bias)));
      }
    }
    for (int slot = 0; slot < kChunk; ++slot)
      scales[t0 + slot] = token_scale[sparse::chunk_token(layout, slot)];
  }
}

#undef SPARQ_AVX512

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
