// The tile loop of the int8 16x1 AMX layer (target attributes; called only where
// Int8Amx16x1Linear::available()). Tiles 0-3: the int32 sums of 16 rows x the 4 quarters of
// the chunk's 64 tokens; 4: the group's weights (A); 5-7: gathered activations (B).
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge source, which its
// own -W(maybe-)uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "src/amx_tiles.hpp"
#include "src/int8_amx_linear.hpp"
#include "src/transpose16_avx512.hpp"

namespace sparq::detail {
namespace {

#define SPARQ_AMX_INT8 __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))

const AmxTileConfig kConfig = sixteen_rows_of_64_bytes();

// B tiles of one group: for each of its first `quads` quads i (the others multiply zero weights),
// the four columns' 64 token bytes interleaved into dwords (column 4i + k in byte k), a quarter of
// the chunk per tile. As in the 4x1 VNNI kernel, per 128-bit lane L the byte and word unpacks give
// quarter q the tokens 16L + 4q + 0..3, which is the chunk's scale order (sparse::chunk_token).
SPARQ_AMX_INT8 void gather_b_tiles(const uint8_t* chunk, const uint32_t* offsets, int quads,
                                   uint8_t (*b)[16][64]) {
  for (int i = 0; i < quads; ++i) {
    const __m512i c0 = _mm512_loadu_si512(chunk + offsets[4 * i]);
    const __m512i c1 = _mm512_loadu_si512(chunk + offsets[4 * i + 1]);
    const __m512i c2 = _mm512_loadu_si512(chunk + offsets[4 * i + 2]);
    const __m512i c3 = _mm512_loadu_si512(chunk + offsets[4 * i + 3]);
    const __m512i lo01 = _mm512_unpacklo_epi8(c0, c1), hi01 = _mm512_unpackhi_epi8(c0, c1);
    const __m512i lo23 = _mm512_unpacklo_epi8(c2, c3), hi23 = _mm512_unpackhi_epi8(c2, c3);
    _mm512_store_si512(b[0][i], _mm512_unpacklo_epi16(lo01, lo23));
    _mm512_store_si512(b[1][i], _mm512_unpackhi_epi16(lo01, lo23));
    _mm512_store_si512(b[2][i], _mm512_unpacklo_epi16(hi01, hi23));
    _mm512_store_si512(b[3][i], _mm512_unpackhi_epi16(hi01, hi23));
  }
}

// A 16 x 16 int32 tile (rows r, slots n) written transposed: out[n * out_row + r].
SPARQ_AMX_INT8 void store_transposed(const int32_t (*tile)[16], int32_t* out, int64_t out_row) {
  __m512i r[16];
  for (int a = 0; a < 16; ++a) r[a] = _mm512_load_si512(tile[a]);
  transpose16(r);
  for (int n = 0; n < 16; ++n) _mm512_storeu_si512(out + n * out_row, r[n]);
}

}  // namespace

SPARQ_AMX_INT8 void int8_16x1_amx_sums(const sparse::Int8Amx16x1Weights& w, const uint8_t* chunk,
                                       int64_t b0, int64_t b1, int32_t* sums, int64_t sums_row) {
  // The groups of consecutive blocks are consecutive. Each group's B tiles are gathered two groups
  // ahead, into the third of three sets: a tile load of data just stored waits for the stores to
  // reach L1 (they are not forwarded), and a store waits for the older tile loads of its address,
  // which took most of the time when every group gathered its own tiles right before loading them.
  // For the same reason a block's sums are transposed out of their tile stores only after the next
  // block's first group has started. Tiles 4-5 take the groups' weights in turn and 6-7 the B
  // tiles, so that no load waits for the product that reads the tile it replaces. Zeros from the
  // thread's start: rows past a group's quads are never gathered, and their stale (or initial zero)
  // bytes meet the group's zero weights.
  alignas(64) thread_local uint8_t b_tiles[3][4][16][64];
  alignas(64) int32_t c_tiles[2][4][16][16];
  const int64_t* begin = w.group_begin.data();
  const uint32_t* offsets = w.offsets.data();
  const uint8_t* quads = w.quads.data();
  const int64_t g0 = begin[b0], g1 = begin[b1];
  for (int64_t g = g0; g < std::min(g1, g0 + 2); ++g)
    gather_b_tiles(chunk, offsets + g * sparse::kAmxGroupColumns, quads[g], b_tiles[g % 3]);
  _tile_loadconfig(&kConfig);
  int64_t stored = -1;  // the block whose sums wait in c_tiles[stored & 1]
  auto transpose_stored = [&] {
    if (stored < 0) return;
    for (int q = 0; q < 4; ++q)
      store_transposed(c_tiles[stored & 1][q], sums + 16 * q * sums_row + 16 * (stored - b0),
                       sums_row);
    stored = -1;
  };
  auto finish_block = [&](int64_t b) {
    transpose_stored();
    _tile_stored(0, c_tiles[b & 1][0], 64);
    _tile_stored(1, c_tiles[b & 1][1], 64);
    _tile_stored(2, c_tiles[b & 1][2], 64);
    _tile_stored(3, c_tiles[b & 1][3], 64);
    stored = b;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  };
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  int64_t b = b0;
  for (int64_t g = g0; g < g1; ++g) {
    while (g >= begin[b + 1]) finish_block(b++);
    uint8_t(*b_set)[16][64] = b_tiles[g % 3];
    const int8_t* a = w.tiles.data() + g * sparse::kAmxTileBytes;
    if (g & 1) {
      _tile_loadd(5, a, 64);
      _tile_loadd(6, b_set[0], 64);
      _tile_dpbsud(0, 5, 6);
      _tile_loadd(7, b_set[1], 64);
      _tile_dpbsud(1, 5, 7);
      _tile_loadd(6, b_set[2], 64);
      _tile_dpbsud(2, 5, 6);
      _tile_loadd(7, b_set[3], 64);
      _tile_dpbsud(3, 5, 7);
    } else {
      _tile_loadd(4, a, 64);
      _tile_loadd(6, b_set[0], 64);
      _tile_dpbsud(0, 4, 6);
      _tile_loadd(7, b_set[1], 64);
      _tile_dpbsud(1, 4, 7);
      _tile_loadd(6, b_set[2], 64);
      _tile_dpbsud(2, 4, 6);
      _tile_loadd(7, b_set[3], 64);
      _tile_dpbsud(3, 4, 7);
    }
    transpose_stored();
    if (g + 2 < g1)
      gather_b_tiles(chunk, offsets + (g + 2) * sparse::kAmxGroupColumns, quads[g + 2],
                     b_tiles[(g + 2) % 3]);
  }
  for (; b < b1; ++b) finish_block(b);
  transpose_stored();
  _tile_release();
}

#undef SPARQ_AMX_INT8

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
