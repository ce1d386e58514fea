// What the AVX-512 tile kernels share: a tile of 4 rows x 16 * quarters tokens (quarters 2 or 4)
// in zmm accumulators (row r, token quarter q in zmm(4r + q); lane L of quarter q holds the
// tokens 4 * quarters * L + 4q + 0..3, as sparse::chunk_token for quads_u8 and
// sparse::f32_slice_token give it), transposed into the L1 stage of the call, and the stage's
// copy-out into y, where the residual and the output type (fp32, int8, bf16) are applied a whole
// token row at a time.
#pragma once

#include "jit/block_tile_generator.hpp"

namespace sparq::jit {

class Avx512TileGenerator : public BlockTileGenerator {
 protected:
  static Xbyak::Zmm acc(int row, int quarter) { return Xbyak::Zmm(row * 4 + quarter); }

  // Emits the function with y_ walking the stage (kStageRowBytes per token, 16 bytes per group):
  // `per_call()`, then per group `per_group()` (which leaves the group's fp32 tile in the stage
  // with store_quarter), then copy_out.
  template <typename PerCall, typename PerGroup>
  void generate_staged(bool residual, TileOutput output, PerCall per_call, PerGroup per_group) {
    generate_group_loop(
        false, 4,
        [&] {
          mov(y_, arg(offsetof(BlockTileArgs, stage)));
          per_call();
        },
        per_group, [&] { copy_out(residual, output); });
  }

  // Transposes the 4 rows of quarter q (lane L of acc(r, q) holds tokens 4 * quarters * L + 4q +
  // 0..3) and stores each token's 4 rows at its place in the stage. Clobbers zmm26..29 and the
  // quarter's accumulators.
  void store_quarter(int quarter, int quarters = 4);

  // Copies valid_tokens x valid_rows of the stage to y, adding the residual and converting to
  // the output type. Clobbers zmm0..5, k1, k2 and the scratch registers.
  void copy_out(bool residual, TileOutput output);
};

}  // namespace sparq::jit
