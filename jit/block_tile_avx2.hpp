// What the AVX2 tile kernels (int8, f32) share: a tile of 4 rows x 16 tokens held in 8 ymm
// accumulators (ymm0..7: row r, token half h in ymm(2r + h); lane order within a half as
// sparse::chunk_token gives it), and the transposed store of a finished tile into y.
#pragma once

#include "jit/block_tile_generator.hpp"
#include "jit/post_ops.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

class Avx2TileGenerator : public BlockTileGenerator {
 protected:
  static Xbyak::Ymm acc(int row, int half) { return Xbyak::Ymm(row * 2 + half); }

  // Transposes the 4 rows x 8 tokens of one half so that each token's 4 outputs are contiguous,
  // then runs the post-ops from the binary one on (the join with the tensor operand, the store:
  // fp32, or int8 requantized with inv_y_scale). Clobbers ymm10..15 and the accumulators of the
  // half; rax, rcx, rdx, r8.
  void store_half(int half, const PostOpList& post_ops);
  // The post-ops before the binary one on the tile: per row, dequantize (x_scale: the two
  // halves' token scales in registers; the row's w_scale broadcast) and bias, then the
  // activation. Clobbers ymm10..15, rax, rcx, r8.
  void tile_post_ops(const PostOpList& post_ops, const Xbyak::Ymm* x_scale = nullptr);
};

}  // namespace sparq::jit
