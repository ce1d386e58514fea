// AVX-512 activation quantizer for the quads_u8 layout (the AVX-512 VNNI kernels): per 16 tokens
// x 16 input columns, 16 row loads, scale and round, saturating packs to bytes and a byte
// transpose in registers (to_u8_columns): 16 tokens' u8 bytes of each column. Compiled with
// target attributes and called only after a CPUID check.
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

// max |row[i]|; NaN when any element is NaN or infinite. On the bits with the sign cleared,
// which order as unsigned integers as the magnitudes do (+inf 0x7f800000, NaNs above it), so one
// vpmaxud per 16 values tracks both; two chains, as a multiply-add per vector to catch NaNs made
// the loop wait on its latency (4 cycles per 16 values on Zen 4).
SPARQ_AVX512 float abs_max(const float* row, int64_t n) {
  const __m512i magnitude = _mm512_set1_epi32(0x7fffffff);
  __m512i m0 = _mm512_setzero_si512(), m1 = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(row + i), magnitude));
    m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(row + i + 16), magnitude));
  }
  for (; i < n; i += 16) {
    const auto tail = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail, row + i), magnitude));
  }
  const uint32_t bits = _mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
  if (bits >= 0x7f800000u) return std::numeric_limits<float>::quiet_NaN();
  float amax;
  std::memcpy(&amax, &bits, sizeof(amax));
  return amax;
}

// 16 tokens' rows of 16 int32 values in [-127, 127] (r[t]: columns 0..15) -> out[L] = columns
// 4L .. 4L + 3, each the 16 tokens' bytes as u8 = q + 128 (out[L] byte 16 k + t: column 4L + k,
// token t). Saturating packs to bytes (the values fit), then the byte matrix transposed: per
// 128-bit lane an in-lane 4 x 4 transpose (vpshufb), a 4 x 4 transpose of lanes across the four
// registers, one of dwords across lanes (vpermd): 28 instructions where a 16 x 16 dword
// transpose and 16 vpmovusdb took 96.
SPARQ_AVX512 void to_u8_columns(const __m512i r[16], __m512i out[4]) {
  __m512i w[8], b[4];
  for (int i = 0; i < 8; ++i) w[i] = _mm512_packs_epi32(r[2 * i], r[2 * i + 1]);
  // b[i], lane L, byte 4u + k: token 4i + u, column 4L + k (packs interleave per 128-bit lane).
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  // Per lane, byte 4u + k -> byte 4k + u.
  const __m512i lane_transpose =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
  for (int i = 0; i < 4; ++i)
    b[i] = _mm512_shuffle_epi8(_mm512_xor_si512(_mm512_packs_epi16(w[2 * i], w[2 * i + 1]), flip),
                               lane_transpose);
  // u[L], lane i, dword k = b[i], lane L, dword k (tokens 4i .. 4i + 3 of column 4L + k).
  const __m512i e0 = _mm512_shuffle_i32x4(b[0], b[1], 0x44),
                e1 = _mm512_shuffle_i32x4(b[0], b[1], 0xee);
  const __m512i f0 = _mm512_shuffle_i32x4(b[2], b[3], 0x44),
                f1 = _mm512_shuffle_i32x4(b[2], b[3], 0xee);
  const __m512i u[4] = {_mm512_shuffle_i32x4(e0, f0, 0x88), _mm512_shuffle_i32x4(e0, f0, 0xdd),
                        _mm512_shuffle_i32x4(e1, f1, 0x88), _mm512_shuffle_i32x4(e1, f1, 0xdd)};
  // out dword 4k + i = u dword 4i + k.
  const __m512i columns = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int l = 0; l < 4; ++l) out[l] = _mm512_permutexvar_epi32(columns, u[l]);
}

}  // namespace

SPARQ_AVX512 void quantize_activations_avx512(const float* x, int64_t tokens, int64_t in,
                                              uint8_t* xq, float* scales) {
  constexpr int64_t kChunk = sparse::kChunkTokens;
  const sparse::Int8Layout layout = sparse::Int8Layout::quads_u8;
  const int64_t chunks = (tokens + kChunk - 1) / kChunk, chunk_bytes = kChunk * in;
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
        __m512i out[4];
        to_u8_columns(r, out);
        const int64_t n = std::min<int64_t>(16, in - c);
        for (int64_t k = 0; k < n; ++k) {
          uint8_t* at = chunk + (c + k) * kChunk + tb;
          const __m512i v = out[k / 4];
          switch (k % 4) {
            case 0:
              _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm512_castsi512_si128(v));
              break;
            case 1:
              _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm512_extracti32x4_epi32(v, 1));
              break;
            case 2:
              _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm512_extracti32x4_epi32(v, 2));
              break;
            default:
              _mm_storeu_si128(reinterpret_cast<__m128i*>(at), _mm512_extracti32x4_epi32(v, 3));
          }
        }
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
