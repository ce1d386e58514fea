// What the AVX-512 tile kernels share: a tile of 4 rows x 16 * quarters tokens (quarters 2 or 4)
// in zmm accumulators (row r, token quarter q in zmm(4r + q); lane L of quarter q holds the
// tokens 4 * quarters * L + 4q + 0..3, as sparse::chunk_token for quads_u8 and
// sparse::f32_slice_token give it), transposed into the L1 stage of the call, and the stage's
// copy-out into y, where the tensor operand and the output type (fp32, int8, bf16) are applied a
// whole token row at a time.
#pragma once

#include "jit/block_tile_generator.hpp"

namespace sparq::jit {

class Avx512TileGenerator : public BlockTileGenerator {
 protected:
  static Xbyak::Zmm acc(int row, int quarter) { return Xbyak::Zmm(row * 4 + quarter); }

  // Emits the function with y_ walking the stage (kStageRowBytes per token, 16 bytes per group):
  // `per_call()`, then per group `per_group()` (which leaves the group's fp32 tile in the stage
  // with store_quarter), with the copy-out deferred (defers_copy_out()): per group, up to
  // kRowsPerGroup token rows of the previous call's stage go to its y, the rest after the last
  // group (copy_out writes a call's own stage instead, for kernels that do not defer). A burst
  // of 128 stores to rows 4 KiB-multiples apart (out = 3072 fp32) stalls on one L1 set; spread
  // between groups, the misses overlap the arithmetic.
  template <typename PerCall, typename PerGroup>
  void generate_pipelined(const PostOpList& post_ops, PerCall per_call, PerGroup per_group) {
    preamble();
    mov(x_, arg(offsetof(BlockTileArgs, x)));
    mov(group_, arg(offsetof(BlockTileArgs, group_begin)));
    mov(y_, arg(offsetof(BlockTileArgs, stage)));
    xor_(copied_, copied_);
    mov(pending_, arg(offsetof(BlockTileArgs, prev_valid_tokens)));
    per_call();
    Xbyak::Label group_loop, after;
    cmp(group_, arg(offsetof(BlockTileArgs, group_end)));
    je(after, T_NEAR);
    L(group_loop);
    per_group();
    copy_previous_rows(post_ops, kRowsPerGroup);
    add(y_, 16);
    add(group_, sizeof(int64_t));
    cmp(group_, arg(offsetof(BlockTileArgs, group_end)));
    jne(group_loop, T_NEAR);
    L(after);
    copy_previous_rows(post_ops, 64);
    postamble();
    epilogue_.emit_table();
  }

  // Transposes the 4 rows of quarter q (lane L of acc(r, q) holds tokens 4 * quarters * L + 4q +
  // 0..3) and stores each token's 4 rows at its place in the stage. Clobbers zmm26..29 and the
  // quarter's accumulators.
  void store_quarter(int quarter, int quarters = 4);

  // The post-ops before the binary one on a 4-row tile: acc = act(float(acc - compensation) *
  // x_scale * w_scale + bias) for lists that dequantize (the per-row arrays and the slice's
  // token scales, in lane order, from the arguments), acc = act(acc + bias) otherwise.
  // Clobbers zmm16..27, rax, rbx, rcx, r8, r9.
  void tile_post_ops(const PostOpList& post_ops, int quarters = 4);

  // Copies valid_tokens x valid_rows of the stage to y with the post-ops from the binary one on
  // (the join with the tensor operand, the store as the output type). Clobbers zmm0..5, k1, k2,
  // k7 and the scratch registers.
  void copy_out(const PostOpList& post_ops);

 private:
  static constexpr int kRowsPerGroup = 8;
  // Up to max_rows more rows of the previous call's stage (copied_ of pending_ done).
  void copy_previous_rows(const PostOpList& post_ops, int max_rows);
  // Row masks k1, k2 from the row count at args + rows_field, and the output's constants.
  void load_copy_state(TileOutput output, size_t rows_field);
  // The copy loop over `left` rows: src (stage), dst (y), dst_stride, res, res_stride set.
  void copy_rows(const PostOpList& post_ops);
  const Xbyak::Reg64 copied_ = r15, pending_ = r12;
};

}  // namespace sparq::jit
