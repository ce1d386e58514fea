// AVX-512 layout of fp32 activations for the bf16 kernels (sparse/bf16_block_pack.hpp): per 16
// slots of a 64-token slice and 16 input columns, the 16 tokens' rows are loaded and rounded to
// bf16 (sparq's integer rounding, so denormals stay as sparse::to_bf16 keeps them), the tokens of
// slots 2p and 2p + 1 share one dword per column (one word blend), and an 8 x 16 dword transpose
// leaves each column's 16 slots as one 32-byte store. About a third of the AVX2 path's
// instructions per value (8 x 8 transposes, blendv rounding, a pack per column).
// Compiled with target attributes and called only after a CPUID check.
#include <immintrin.h>

#include <algorithm>

#include "sparse/bf16_block_pack.hpp"
#include "src/bf16_round_avx512.hpp"
#include "src/f32_activation_layout.hpp"

// GCC 12's AVX-512 intrinsics pass an undefined vector as the unused merge source, and its own
// -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#define SPARQ_AVX512 __attribute__((target("avx512f,avx512bw")))

namespace sparq::detail {
namespace {

// d[p] (8 rows of 16 dwords, columns 0..15) -> 8 registers of two columns' 8 dwords each:
// out[k] holds columns k (lower 256 bits) and 4 + k (upper), out[4 + k] columns 8 + k and 12 + k.
SPARQ_AVX512 inline void transpose8x16(const __m512i d[8], __m512i out[8]) {
  __m512i a[8], b[8];
  for (int m = 0; m < 4; ++m) {
    a[2 * m] = _mm512_unpacklo_epi32(d[2 * m], d[2 * m + 1]);
    a[2 * m + 1] = _mm512_unpackhi_epi32(d[2 * m], d[2 * m + 1]);
  }
  // b[4q + k], 128-bit lane L: column 4L + k of rows 4q .. 4q + 3.
  for (int q = 0; q < 2; ++q) {
    b[4 * q] = _mm512_unpacklo_epi64(a[4 * q], a[4 * q + 2]);
    b[4 * q + 1] = _mm512_unpackhi_epi64(a[4 * q], a[4 * q + 2]);
    b[4 * q + 2] = _mm512_unpacklo_epi64(a[4 * q + 1], a[4 * q + 3]);
    b[4 * q + 3] = _mm512_unpackhi_epi64(a[4 * q + 1], a[4 * q + 3]);
  }
  // Lanes [b[k].L, b[4 + k].L] side by side: rows 0-3 and 4-7 of column 4L + k.
  const __m512i low = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i high = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  for (int k = 0; k < 4; ++k) {
    out[k] = _mm512_permutex2var_epi64(b[k], low, b[4 + k]);
    out[4 + k] = _mm512_permutex2var_epi64(b[k], high, b[4 + k]);
  }
}

}  // namespace

SPARQ_AVX512 void layout_bf16_activations_avx512(const float* x, int64_t tokens, int64_t in,
                                                 uint16_t* dst) {
  constexpr int64_t n = sparse::kBf16SliceTokens;
  const int64_t slices = (tokens + n - 1) / n;
  for (int64_t s = 0; s < slices; ++s) {
    uint16_t* slice = dst + s * in * n;
    // Groups outer: a group's 16 token rows stream once (columns outer measured 12 % slower at
    // 128 x 4096 on Zen 4).
    for (int group = 0; group < n / 16; ++group) {
      const float* rows[16];
      slot_rows(x, tokens, in, s * n, 16 * group, 16, sparse::bf16_slice_token, rows);
      for (int64_t i = 0; i < in; i += 16) {
        const auto cols = static_cast<__mmask16>(in - i >= 16 ? 0xffff : (1u << (in - i)) - 1);
        __m512i d[8];
        for (int p = 0; p < 8; ++p) {
          const __m512i lo = rows[2 * p]
                                 ? round_bf16_high(_mm512_maskz_loadu_ps(cols, rows[2 * p] + i))
                                 : _mm512_setzero_si512();
          const __m512i hi = rows[2 * p + 1]
                                 ? round_bf16_high(_mm512_maskz_loadu_ps(cols, rows[2 * p + 1] + i))
                                 : _mm512_setzero_si512();
          // Slot 2p's word low, slot 2p + 1's high.
          d[p] = _mm512_mask_blend_epi16(0xaaaaaaaa, _mm512_srli_epi32(lo, 16), hi);
        }
        __m512i out[8];
        transpose8x16(d, out);
        const int64_t valid = std::min<int64_t>(16, in - i);
        for (int c = 0; c < valid; ++c) {
          const __m512i v = out[(c / 8) * 4 + c % 4];
          const __m256i column =
              (c / 4) % 2 == 0 ? _mm512_castsi512_si256(v) : _mm512_extracti64x4_epi64(v, 1);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(slice + (i + c) * n + 16 * group), column);
        }
      }
    }
  }
}

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
