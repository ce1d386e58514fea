// What the AVX2 tile kernels (int8, f32) share: a tile of 4 rows x 16 tokens held in 8 ymm
// accumulators (ymm0..7: row r, token half h in ymm(2r + h); lane order within a half as
// sparse::chunk_token gives it), and the transposed store of a finished tile into y.
#pragma once

#include "jit/block_tile_generator.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

class Avx2TileGenerator : public BlockTileGenerator {
 protected:
  static Xbyak::Ymm acc(int row, int half) { return Xbyak::Ymm(row * 2 + half); }

  // Transposes the 4 rows x 8 tokens of one half so that each token's 4 outputs are contiguous,
  // joins the operand (EpilogueEmitter::combine), and stores (fp32, or requantized int8 with
  // inv_y_scale). Clobbers ymm10..15 and the accumulators of the half; rax, rcx, rdx, r8.
  void store_half(int half, Operand operand, bool int8_output);

  // f32 accumulators: add the group's 4 row biases, then the activation. Clobbers ymm8..14,
  // rax, rcx.
  void add_bias_and_activate(Activation activation);
};

}  // namespace sparq::jit
