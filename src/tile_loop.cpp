#include "src/tile_loop.hpp"

#include <algorithm>
#include <cstring>

#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"
#include "src/bf16_convert.hpp"

namespace sparq {

void run_tiles(const TileLoop& loop) {
  const jit::BlockTileKernel& kernel = *loop.kernel;
  const int64_t out = loop.out, tokens = loop.tokens;
  // A kernel that stores partial tiles writes every output type into y itself. Otherwise bf16
  // output: the kernel writes fp32 tiles into the (L1) staging block, converted on the way out;
  // y then holds 2-byte elements.
  const bool self_staged = kernel.stores_partial_tiles();
  const bool bf16 = loop.bf16_output;
  const int64_t elem = bf16 && !self_staged ? 4 : loop.y_element_bytes;
  const int64_t y_elem = bf16 ? 2 : elem;
  const int tile = kernel.tile_tokens();
  const int64_t slices = sparse::ceil_div(tokens, tile);
  auto* y_bytes = static_cast<uint8_t*>(loop.y);

  // Each thread takes a range of blocks of kGroupsPerCall row groups; for every slice of tokens
  // (outer loop: the slice stays in L1) one kernel call runs a whole block. Full blocks are
  // written straight into y. A block that runs short goes to a staging block instead, and only
  // its valid part is copied out, so the kernel itself never needs a partial store (a kernel that
  // stores partial tiles always writes y itself and gets the staging block as its scratch).
  constexpr int64_t kGroupsPerCall = jit::kGroupsPerCall;
  constexpr int64_t kMaxTile = sparse::kChunkTokens;
  sparse::require(tile <= kMaxTile, "run_tiles: tile wider than the staging block");
  static_assert(kMaxTile * jit::kStageRowBytes == jit::kStageBytes);
  const int64_t stage_stride = kGroupsPerCall * 4 * elem;
  const int64_t stage_res_stride = kGroupsPerCall * 4 * sizeof(float);
  parallel_ranges(
      *loop.arena, sparse::ceil_div(loop.groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
        // Kernels that defer their copy-out alternate between the two stages.
        alignas(64) uint8_t stages[2][jit::kStageBytes + jit::kScratchBytes];
        alignas(64) float stage_res[kMaxTile * kGroupsPerCall * 4];
        uint8_t* const stage = stages[0];
        const bool deferred = kernel.defers_copy_out();
        int current = 0;
        jit::BlockTileArgs a{};
        a.entries = loop.entries;
        a.inv_y_scale = loop.inv_y_scale;
        a.stage = stage;
        for (int64_t slice = 0; slice < slices; ++slice) {
          const int64_t t0 = slice * tile;
          const int64_t valid_t = std::min<int64_t>(tile, tokens - t0);
          a.x = loop.x + slice * loop.slice_bytes;
          a.x_scale = loop.x_scales ? loop.x_scales + t0 : nullptr;
          a.valid_tokens = valid_t;
          for (int64_t blk = b0; blk < b1; ++blk) {
            const int64_t g_begin = blk * kGroupsPerCall;
            const int64_t g_end = std::min(loop.groups, g_begin + kGroupsPerCall);
            const int64_t r_begin = g_begin * 4;
            const int64_t rows = std::min(out, g_end * 4) - r_begin;
            const bool direct =
                self_staged || (!bf16 && rows == kGroupsPerCall * 4 && valid_t == tile);
            uint8_t* y_block = y_bytes + (t0 * out + r_begin) * y_elem;
            const float* res_block = loop.residual ? loop.residual + t0 * out + r_begin : nullptr;
            a.valid_rows = rows;
            if (direct) {
              a.y = y_block;
              a.y_stride = out * y_elem;
              a.residual_stride = out * static_cast<int64_t>(sizeof(float));
            } else {
              a.y = stage;
              a.y_stride = stage_stride;
              a.residual_stride = stage_res_stride;
              if (res_block) {
                // Zeroed first: the kernel also reads the padding tokens and rows.
                std::memset(stage_res, 0, sizeof(stage_res));
                for (int64_t t = 0; t < valid_t; ++t)
                  std::memcpy(stage_res + t * kGroupsPerCall * 4, res_block + t * out,
                              static_cast<size_t>(rows) * sizeof(float));
                res_block = stage_res;
              }
            }
            a.residual = res_block;
            a.group_begin = loop.group_begin + g_begin;
            a.group_end = loop.group_begin + g_end;
            a.w_scale = loop.w_scale ? loop.w_scale + r_begin : nullptr;
            a.bias = loop.bias + r_begin;
            a.compensation = loop.compensation ? loop.compensation + r_begin : nullptr;
            if (deferred) a.stage = stages[current];
            kernel.run(a);
            if (deferred) {
              a.prev_stage = a.stage;
              a.prev_y = a.y;
              a.prev_residual = a.residual;
              a.prev_valid_tokens = a.valid_tokens;
              a.prev_valid_rows = a.valid_rows;
              current ^= 1;
            }
            if (!direct)
              for (int64_t t = 0; t < valid_t; ++t) {
                if (bf16)
                  convert_to_bf16(reinterpret_cast<const float*>(stage + t * stage_stride),
                                  reinterpret_cast<uint16_t*>(y_block + t * out * y_elem), rows);
                else
                  std::memcpy(y_block + t * out * elem, stage + t * stage_stride,
                              static_cast<size_t>(rows * elem));
              }
          }
        }
        if (deferred) {  // the last call's tile: a call with no groups only copies it out
          a.group_begin = a.group_end;
          a.stage = stages[current];
          kernel.run(a);
        }
      });
}

}  // namespace sparq
