// AVX2 activation quantizer: 8 tokens x 8 input columns at a time are quantized, transposed in
// registers and written as 8-token runs of each column (the chunk layout is [in][64 tokens]).
// Its functions are compiled for AVX2 + FMA (target attributes) and only called after a CPUID
// check; the rest of the unit, and any inline code it instantiates, stays baseline x86-64.
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

// max |row[i]|; NaN when any element is NaN or infinite. On the bits with the sign cleared,
// which order as unsigned integers as the magnitudes do (+inf 0x7f800000, NaNs above it), so one
// vpmaxud per 8 values tracks both, in two chains (a multiply-add chain to catch NaNs made the
// loop wait on its latency).
__attribute__((target("avx2,fma"))) float abs_max(const float* row, int64_t n) {
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const auto* at = reinterpret_cast<const __m256i*>(row + i);
    m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_loadu_si256(at), magnitude));
    m1 = _mm256_max_epu32(m1, _mm256_and_si256(_mm256_loadu_si256(at + 1), magnitude));
  }
  if (i + 8 <= n) {
    m0 = _mm256_max_epu32(
        m0,
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i)), magnitude));
    i += 8;
  }
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_max_epu32(m0, m1));
  uint32_t bits = 0;
  for (uint32_t lane : lanes) bits = std::max(bits, lane);
  for (; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, row + i, sizeof(b));
    bits = std::max(bits, b & 0x7fffffffu);
  }
  if (bits >= 0x7f800000u) return std::numeric_limits<float>::quiet_NaN();
  float best;
  std::memcpy(&best, &bits, sizeof(best));
  return best;
}

// In-register transpose of eight 8-lane rows.
__attribute__((target("avx2,fma"))) void transpose8(__m256i r[8]) {
  __m256 v[8], t[8];
  for (int i = 0; i < 8; ++i) v[i] = _mm256_castsi256_ps(r[i]);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    v[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    v[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    v[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    v[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_castps_si256(_mm256_permute2f128_ps(v[i], v[i + 4], 0x20));
    r[i + 4] = _mm256_castps_si256(_mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
  }
}

}  // namespace

__attribute__((target("avx2,fma"))) void quantize_activations_avx2(const float* x, int64_t tokens,
                                                                   int64_t in,
                                                                   sparse::Int8Layout layout,
                                                                   uint8_t* xq, float* scales) {
  const bool u8 = layout == sparse::Int8Layout::quads_u8;
  const int64_t chunks = (tokens + sparse::kChunkTokens - 1) / sparse::kChunkTokens;
  // Full chunks are written whole below; only a short last chunk has padding tokens to zero
  // (clearing every chunk first cost ~1.5 ms per BERT-base forward).
  const int64_t chunk_bytes = sparse::kChunkTokens * in * sparse::x_element_bytes(layout);
  const int64_t full_chunks = tokens / sparse::kChunkTokens;
  if (full_chunks < chunks)
    std::memset(xq + full_chunks * chunk_bytes, u8 ? 128 : 0, static_cast<size_t>(chunk_bytes));
  float inv[sparse::kChunkTokens];
  static const float zeros[8] = {};
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t t0 = ch * sparse::kChunkTokens;
    const int64_t valid = std::min<int64_t>(sparse::kChunkTokens, tokens - t0);
    float token_scale[sparse::kChunkTokens] = {};
    for (int64_t t = 0; t < valid; ++t) {
      float amax = abs_max(x + (t0 + t) * in, in);
      if (std::isnan(amax))
        throw InvalidArgument("forward: x[" + std::to_string(t0 + t) +
                              "] holds a value that is not finite");
      inv[t] = amax > 0.0f ? 127.0f / amax : 0.0f;
      if (!(inv[t] <= std::numeric_limits<float>::max())) inv[t] = amax = 0.0f;  // as quantize_rows
      token_scale[t] = amax / 127.0f;
    }
    for (int slot = 0; slot < sparse::kChunkTokens; ++slot)
      scales[t0 + slot] = token_scale[sparse::chunk_token(layout, slot)];
    for (int64_t tb = 0; tb < valid; tb += 8) {
      const float* rows[8];
      __m256 row_inv[8];
      for (int j = 0; j < 8; ++j) {
        const bool real = tb + j < valid;
        rows[j] = real ? x + (t0 + tb + j) * in : zeros;
        row_inv[j] = _mm256_set1_ps(real ? inv[tb + j] : 0.0f);
      }
      // Tokens tb..tb+7 of column i start at run + i * column_bytes (one offset computation per
      // 8 tokens, not one per store).
      uint8_t* const run = xq + sparse::x_offset(layout, in, t0 + tb, 0);
      const int64_t column_bytes = sparse::x_column_bytes(layout);
      int64_t i = 0;
      for (; i + 8 <= in; i += 8) {
        __m256i q[8];
        for (int j = 0; j < 8; ++j) {
          const __m256 v = rows[j] == zeros ? _mm256_setzero_ps() : _mm256_loadu_ps(rows[j] + i);
          q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v, row_inv[j]));  // round half even
        }
        transpose8(q);  // q[c] = column i + c, tokens tb..tb+7
        for (int c = 0; c < 8; ++c) {
          const __m128i w16 =
              _mm_packs_epi32(_mm256_castsi256_si128(q[c]), _mm256_extracti128_si256(q[c], 1));
          uint8_t* dst = run + (i + c) * column_bytes;
          if (u8) {
            const __m128i b = _mm_packus_epi16(_mm_add_epi16(w16, _mm_set1_epi16(128)), w16);
            _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), b);
          } else {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), w16);
          }
        }
      }
      for (; i < in; ++i)
        for (int j = 0; j < 8 && tb + j < valid; ++j) {
          const float s = std::nearbyint(rows[j][i] * inv[tb + j]);
          const int16_t v = static_cast<int16_t>(std::clamp(s, -127.0f, 127.0f));
          uint8_t* dst = xq + sparse::x_offset(layout, in, t0 + tb + j, i);
          if (u8)
            *dst = static_cast<uint8_t>(v + 128);
          else
            std::memcpy(dst, &v, 2);
        }
    }
  }
}

__attribute__((target("avx2,fma"))) void quantize_rows_avx2(const float* x, int64_t rows,
                                                            int64_t cols, int8_t* q, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    float amax = abs_max(row, cols);
    if (std::isnan(amax))
      throw InvalidArgument("quantize: row " + std::to_string(r) +
                            " holds a value that is not finite");
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    if (!(inv <= std::numeric_limits<float>::max())) inv = amax = 0.0f;  // as quantize_rows
    scale[r] = amax / 127.0f;
    const __m256 vinv = _mm256_set1_ps(inv);
    int8_t* out = q + r * cols;
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
      // Round half to even (MXCSR's default), as std::nearbyint; |v * inv| <= 127.
      const __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + c), vinv));
      const __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + c + 8), vinv));
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xd8);
      const __m128i bytes =
          _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), bytes);
    }
    for (; c < cols; ++c)
      out[c] = static_cast<int8_t>(std::clamp(std::nearbyint(row[c] * inv), -127.0f, 127.0f));
  }
}

}  // namespace sparq::detail
