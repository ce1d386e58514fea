// The attention's two bf16 products on AMX tiles (target attributes; called only where
// amx_tiles_for_attention). One tile configuration for both: tiles 0-3 hold a 32 x 32 block of
// fp32 sums, 4-5 two 16-row blocks of A, 6-7 two 16-column blocks of B, every tile 16 rows of
// 64 bytes.
#include <immintrin.h>

#include <cstdint>

#include "models/batched_bf16_attention.hpp"

namespace sparq::models::detail {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

TileConfig sixteen_rows_of_64_bytes() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.bytes_per_row[t] = 64;
    c.rows[t] = 16;
  }
  return c;
}

// c [32 x 32] fp32 (rows c_row floats apart) = the sum over `steps` of A [32 x 32 bf16] x B
// [16 dword pairs x 32]: A's two 16-row halves at a0 and a1 (rows a_stride bytes apart), advanced
// by a_step bf16 values per step; B's rows b_stride bytes apart, its right half 16 dwords on,
// advanced by b_step dwords per step.
__attribute__((target("amx-tile,amx-bf16"))) void block_32x32(
    const uint16_t* a0, const uint16_t* a1, int64_t a_stride, int64_t a_step, const uint32_t* b,
    int64_t b_stride, int64_t b_step, int64_t steps, float* c, int64_t c_row) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < steps; ++s) {
    _tile_loadd(4, a0 + s * a_step, a_stride);
    _tile_loadd(5, a1 + s * a_step, a_stride);
    _tile_loadd(6, b + s * b_step, b_stride);
    _tile_loadd(7, b + s * b_step + 16, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t c_stride = c_row * 4;
  _tile_stored(0, c, c_stride);
  _tile_stored(1, c + 16, c_stride);
  _tile_stored(2, c + 16 * c_row, c_stride);
  _tile_stored(3, c + 16 * c_row + 16, c_stride);
}

const TileConfig kConfig = sixteen_rows_of_64_bytes();

}  // namespace

__attribute__((target("amx-tile,amx-bf16"))) void amx_bf16_product(const uint16_t* a,
                                                                   const uint32_t* b_pairs,
                                                                   int64_t m, int64_t n, int64_t k,
                                                                   float* c) {
  _tile_loadconfig(&kConfig);
  for (int64_t i = 0; i < m; i += 32)
    for (int64_t j = 0; j < n; j += 32)
      block_32x32(a + i * k, a + (i + 16) * k, k * 2, 32, b_pairs + j, n * 4, 16 * n, k / 32,
                  c + i * n + j, n);
  _tile_release();
}

}  // namespace sparq::models::detail
