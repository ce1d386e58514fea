// The tile loops of the 16x1 AMX layers (target attributes; called only where the layer's
// available() holds). Tiles 0-3: the sums (int32 or fp32) of 16 rows x the 4 quarters of the
// chunk's 64 tokens; 4-5: the groups' weights (A), in turn; 6-7: gathered activations (B).
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge source, which its
// own -W(maybe-)uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>

#include "src/amx_16x1_linear.hpp"
#include "src/amx_tiles.hpp"
#include "src/transpose16_avx512.hpp"

namespace sparq::detail {
namespace {

#define SPARQ_AMX_TILES __attribute__((target("amx-tile,amx-int8,amx-bf16,avx512f,avx512bw")))

const AmxTileConfig kConfig = sixteen_rows_of_64_bytes();

using BTiles = uint8_t[4][16][64];

// One group's products: its weights into tile A (4 or 5, a literal: the intrinsics name the
// register in their assembly), then each quarter's B tile (6 and 7 in turn) into sums tile q.
#define SPARQ_GROUP_PRODUCTS(PRODUCT, A) \
  _tile_loadd(A, a, 64);                 \
  _tile_loadd(6, b[0], 64);              \
  PRODUCT(0, A, 6);                      \
  _tile_loadd(7, b[1], 64);              \
  PRODUCT(1, A, 7);                      \
  _tile_loadd(6, b[2], 64);              \
  PRODUCT(2, A, 6);                      \
  _tile_loadd(7, b[3], 64);              \
  PRODUCT(3, A, 7);

// int8: for each of a group's first `quads` quads i, the four columns' 64 token bytes (quads_u8
// chunk) interleaved into dwords (column 4i + k in byte k), a quarter of the chunk per tile. As in
// the 4x1 VNNI kernel, per 128-bit lane L the byte and word unpacks give quarter q the tokens
// 16L + 4q + 0..3, which is the chunk's scale order (sparse::chunk_token).
struct Int8Tiles {
  SPARQ_AMX_TILES static void gather(const uint8_t* chunk, const uint32_t* offsets, int quads,
                                     BTiles& b) {
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
  SPARQ_AMX_TILES static void products_a4(const uint8_t* a, const BTiles& b){
      SPARQ_GROUP_PRODUCTS(_tile_dpbsud, 4)} SPARQ_AMX_TILES
      static void products_a5(const uint8_t* a, const BTiles& b) {
    SPARQ_GROUP_PRODUCTS(_tile_dpbsud, 5)
  }
};

// bf16: for each of a group's first `pairs` pairs i, the two columns' 64 bf16 tokens (a bf16
// slice, two zmm a column) interleaved into dwords (column 2i + k in word k): the word unpacks of
// the slice's halves give pair vector q the tokens 16L + 4q + 0..3 (sparse::bf16_slice_token),
// the same order as int8's quarters.
struct Bf16Tiles {
  SPARQ_AMX_TILES static void gather(const uint8_t* chunk, const uint32_t* offsets, int pairs,
                                     BTiles& b) {
    for (int i = 0; i < pairs; ++i) {
      const uint8_t* c0 = chunk + offsets[2 * i];
      const uint8_t* c1 = chunk + offsets[2 * i + 1];
      for (int h = 0; h < 2; ++h) {
        const __m512i a = _mm512_loadu_si512(c0 + 64 * h), d = _mm512_loadu_si512(c1 + 64 * h);
        _mm512_store_si512(b[2 * h][i], _mm512_unpacklo_epi16(a, d));
        _mm512_store_si512(b[2 * h + 1][i], _mm512_unpackhi_epi16(a, d));
      }
    }
  }
  SPARQ_AMX_TILES static void products_a4(const uint8_t* a, const BTiles& b){
      SPARQ_GROUP_PRODUCTS(_tile_dpbf16ps, 4)} SPARQ_AMX_TILES
      static void products_a5(const uint8_t* a, const BTiles& b) {
    SPARQ_GROUP_PRODUCTS(_tile_dpbf16ps, 5)
  }
};

// A 16 x 16 tile of dwords (rows r, slots n) written transposed: out[n * out_row + r].
SPARQ_AMX_TILES void store_transposed(const uint32_t (*tile)[16], uint32_t* out, int64_t out_row) {
  __m512i r[16];
  for (int a = 0; a < 16; ++a) r[a] = _mm512_load_si512(tile[a]);
  transpose16(r);
  for (int n = 0; n < 16; ++n) _mm512_storeu_si512(out + n * out_row, r[n]);
}

SPARQ_AMX_TILES inline void zero_sums() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

// The sums of blocks [b0, b1) over one chunk (see amx_16x1_sums in the header). The groups of
// consecutive blocks are consecutive. Each group's B tiles are gathered two groups ahead, into the
// third of three sets: a tile load of data just stored waits for the stores to reach L1 (they are
// not forwarded), and a store waits for the older tile loads of its address, which took most of
// the time when every group gathered its own tiles right before loading them. For the same reason
// a block's sums are transposed out of their tile stores only after the next block's first group
// has started. Tiles 4 and 5 take the groups' weights in turn and 6-7 the B tiles, so that no load
// waits for the product that reads the tile it replaces.
template <typename Kind>
SPARQ_AMX_TILES void sums_of(const sparse::Amx16x1Weights& w, const uint8_t* chunk, int64_t b0,
                             int64_t b1, uint32_t* sums, int64_t sums_row) {
  // Zeros from the thread's start: rows past a group's real columns are never gathered, and
  // their stale (or initial zero) bytes meet the group's zero weights.
  alignas(64) thread_local uint8_t b_tiles[3][4][16][64];
  alignas(64) uint32_t c_tiles[2][4][16][16];
  const int64_t* begin = w.group_begin.data();
  const uint32_t* offsets = w.offsets.data();
  const uint8_t* steps = w.steps.data();
  const int64_t g0 = begin[b0], g1 = begin[b1];
  const auto gather = [&](int64_t g) {
    Kind::gather(chunk, offsets + g * w.group_columns, steps[g], b_tiles[g % 3]);
  };
  for (int64_t g = g0; g < std::min(g1, g0 + 2); ++g) gather(g);
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
    zero_sums();
  };
  zero_sums();
  int64_t b = b0;
  for (int64_t g = g0; g < g1; ++g) {
    while (g >= begin[b + 1]) finish_block(b++);
    const uint8_t* a = w.tiles.data() + g * sparse::kAmxTileBytes;
    if (g & 1)
      Kind::products_a5(a, b_tiles[g % 3]);
    else
      Kind::products_a4(a, b_tiles[g % 3]);
    transpose_stored();
    if (g + 2 < g1) gather(g + 2);
  }
  for (; b < b1; ++b) finish_block(b);
  transpose_stored();
  _tile_release();
}

}  // namespace

void int8_16x1_amx_sums(const sparse::Amx16x1Weights& w, const uint8_t* chunk, int64_t b0,
                        int64_t b1, int32_t* sums, int64_t sums_row) {
  sums_of<Int8Tiles>(w, chunk, b0, b1, reinterpret_cast<uint32_t*>(sums), sums_row);
}

void bf16_16x1_amx_sums(const sparse::Amx16x1Weights& w, const uint8_t* chunk, int64_t b0,
                        int64_t b1, float* sums, int64_t sums_row) {
  sums_of<Bf16Tiles>(w, chunk, b0, b1, reinterpret_cast<uint32_t*>(sums), sums_row);
}

#undef SPARQ_GROUP_PRODUCTS
#undef SPARQ_AMX_TILES

}  // namespace sparq::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
