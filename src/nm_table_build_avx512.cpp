// AVX-512BW table builder of the 2:4 table kernels: per unit, the columns loaded once, every
// block pair interleaved (vpunpck{l,h}bw for int8, vpunpck{l,h}wd for bf16), every combination
// stored as the kernel's 4 vectors. int8: 8 column loads, 24 byte unpacks, 144 word unpacks and
// 144 stores per 8 columns and 64 tokens; shared by every row of the layer. Compiled with target
// attributes and called only after a CPUID check.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_epi32() as the unused merge source, which its
// own -Wuninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "src/nm_table_build.hpp"

namespace sparq::detail {
namespace {

#define SPARQ_AVX512 __attribute__((target("avx512f,avx512bw")))
// (store4 and the unit builders write whole 64-byte vectors at 64-byte offsets of an aligned
// table; the activation slices are read unaligned: a short slice's columns are 32 bytes.)

using sparse::kNmPairColumns;

SPARQ_AVX512 inline void store4(uint8_t* at, __m512i v0, __m512i v1, __m512i v2, __m512i v3) {
  _mm512_store_si512(at, v0);
  _mm512_store_si512(at + 64, v1);
  _mm512_store_si512(at + 128, v2);
  _mm512_store_si512(at + 192, v3);
}

SPARQ_AVX512 void int8_unit(const uint8_t* columns, uint8_t* unit) {
  __m512i c[8];
  for (int i = 0; i < 8; ++i) c[i] = _mm512_loadu_si512(columns + 64 * i);
  // Per block b and pair p, the pair's bytes interleaved: tokens 16L + 0..7 (lo), 8..15 (hi).
  __m512i lo[2][6], hi[2][6];
  for (int b = 0; b < 2; ++b)
    for (int p = 0; p < 6; ++p) {
      const __m512i x = c[4 * b + kNmPairColumns[p][0]], y = c[4 * b + kNmPairColumns[p][1]];
      lo[b][p] = _mm512_unpacklo_epi8(x, y);
      hi[b][p] = _mm512_unpackhi_epi8(x, y);
    }
  for (int p0 = 0; p0 < 6; ++p0)
    for (int p1 = 0; p1 < 6; ++p1)
      store4(unit + (6 * p0 + p1) * 256, _mm512_unpacklo_epi16(lo[0][p0], lo[1][p1]),
             _mm512_unpackhi_epi16(lo[0][p0], lo[1][p1]),
             _mm512_unpacklo_epi16(hi[0][p0], hi[1][p1]),
             _mm512_unpackhi_epi16(hi[0][p0], hi[1][p1]));
}

SPARQ_AVX512 void bf16_unit(const uint8_t* columns, uint8_t* unit) {
  __m512i c[4][2];
  for (int i = 0; i < 4; ++i)
    for (int h = 0; h < 2; ++h) c[i][h] = _mm512_loadu_si512(columns + 128 * i + 64 * h);
  for (int p = 0; p < 6; ++p) {
    const __m512i* x = c[kNmPairColumns[p][0]];
    const __m512i* y = c[kNmPairColumns[p][1]];
    store4(unit + p * 256, _mm512_unpacklo_epi16(x[0], y[0]), _mm512_unpackhi_epi16(x[0], y[0]),
           _mm512_unpacklo_epi16(x[1], y[1]), _mm512_unpackhi_epi16(x[1], y[1]));
  }
}

// Short slices in token order: 32 tokens (2 quarters) interleave like one zmm half of the above;
// 16 tokens (1 quarter) widen each column's 16 values to dwords, the pair's second column
// shifted into the upper halves.
SPARQ_AVX512 void bf16_unit_32(const uint8_t* columns, uint8_t* unit) {
  __m512i c[4];
  for (int i = 0; i < 4; ++i) c[i] = _mm512_loadu_si512(columns + 64 * i);
  for (int p = 0; p < 6; ++p) {
    const __m512i x = c[kNmPairColumns[p][0]], y = c[kNmPairColumns[p][1]];
    _mm512_store_si512(unit + p * 128, _mm512_unpacklo_epi16(x, y));
    _mm512_store_si512(unit + p * 128 + 64, _mm512_unpackhi_epi16(x, y));
  }
}

SPARQ_AVX512 void bf16_unit_16(const uint8_t* columns, uint8_t* unit) {
  __m512i low[4], high[4];
  for (int i = 0; i < 4; ++i) {
    low[i] = _mm512_cvtepu16_epi32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(columns + 32 * i)));
    high[i] = _mm512_slli_epi32(low[i], 16);
  }
  for (int p = 0; p < 6; ++p)
    _mm512_store_si512(unit + p * 64,
                       _mm512_or_si512(low[kNmPairColumns[p][0]], high[kNmPairColumns[p][1]]));
}

}  // namespace

void build_nm_table_avx512(sparse::NmTableType type, int quarters, const uint8_t* slice,
                           int64_t unit_begin, int64_t unit_end, uint8_t* table) {
  const int64_t unit_bytes = sparse::nm_table_unit_bytes(type, quarters);
  const int64_t column_bytes = sparse::nm_table_column_bytes(type, quarters);
  const int unit_columns = sparse::nm_table_unit_columns(type);
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const uint8_t* columns = slice + u * unit_columns * column_bytes;
    uint8_t* unit = table + (u - unit_begin) * unit_bytes;
    if (type == sparse::NmTableType::int8)
      int8_unit(columns, unit);
    else if (quarters == 4)
      bf16_unit(columns, unit);
    else if (quarters == 2)
      bf16_unit_32(columns, unit);
    else
      bf16_unit_16(columns, unit);
  }
}

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
