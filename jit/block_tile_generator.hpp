// What every 4x1 block-sparse tile-kernel generator (int8 and f32, any ISA) shares: the register
// roles, the loading of the call's arguments, the loop over a block of row groups, and address
// helpers.
#pragma once

#include <cstddef>

#include "jit/block_tile.hpp"
#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"

namespace sparq::jit {

class BlockTileGenerator : public Generator {
 protected:
  BlockTileGenerator() : epilogue_(*this) {}

  Xbyak::Address arg(size_t offset) const { return ptr[args_ + offset]; }

  // Emits the whole function: prologue, `per_call()` once, then for every group of the call
  // `per_group()` followed by advancing y (4 rows of y_element_bytes), residual and the group
  // pointer, and `after_groups()` once after the last group.
  template <typename PerCall, typename PerGroup, typename AfterGroups>
  void generate_group_loop(bool residual, int y_element_bytes, PerCall per_call, PerGroup per_group,
                           AfterGroups after_groups) {
    preamble();
    mov(x_, arg(offsetof(BlockTileArgs, x)));
    mov(group_, arg(offsetof(BlockTileArgs, group_begin)));
    mov(y_, arg(offsetof(BlockTileArgs, y)));
    mov(y_stride_, arg(offsetof(BlockTileArgs, y_stride)));
    lea(y_stride3_, ptr[y_stride_ + y_stride_ * 2]);
    if (residual) {
      mov(res_, arg(offsetof(BlockTileArgs, residual)));
      mov(res_stride_, arg(offsetof(BlockTileArgs, residual_stride)));
      lea(res_stride3_, ptr[res_stride_ + res_stride_ * 2]);
    }
    per_call();
    Xbyak::Label group_loop, done;
    cmp(group_, arg(offsetof(BlockTileArgs, group_end)));
    je(done, T_NEAR);
    L(group_loop);
    per_group();
    add(y_, 4 * y_element_bytes);
    if (residual) add(res_, 4 * sizeof(float));
    add(group_, sizeof(int64_t));
    cmp(group_, arg(offsetof(BlockTileArgs, group_end)));
    jne(group_loop, T_NEAR);
    after_groups();
    L(done);
    postamble();
    epilogue_.emit_table();
  }
  template <typename PerCall, typename PerGroup>
  void generate_group_loop(bool residual, int y_element_bytes, PerCall per_call,
                           PerGroup per_group) {
    generate_group_loop(residual, y_element_bytes, per_call, per_group, [] {});
  }

  // reg = byte offset of the current group's 4 rows in the per-row arrays (w_scale, bias,
  // compensation): 16 * g = 2 * (group_ - group_begin).
  void group_row_offset(const Xbyak::Reg64& reg) {
    mov(reg, group_);
    sub(reg, arg(offsetof(BlockTileArgs, group_begin)));
    add(reg, reg);
  }

  // Token j (0..3) after `base`, with stride and 3 * stride in registers.
  Xbyak::Address token(const Xbyak::Reg64& base, const Xbyak::Reg64& stride,
                       const Xbyak::Reg64& stride3, int j) const {
    switch (j) {
      case 0:
        return ptr[base];
      case 1:
        return ptr[base + stride];
      case 2:
        return ptr[base + stride * 2];
      default:
        return ptr[base + stride3];
    }
  }

  EpilogueEmitter epilogue_;
  // Register roles. rbp walks group_begin; rax, rbx, rcx, rdx, r8, r9 are scratch between phases.
  const Xbyak::Reg64 args_ = rdi, x_ = rsi, entry_ = rdx, count_ = rcx, group_ = rbp;
  const Xbyak::Reg64 y_ = r10, y_stride_ = r11, y_stride3_ = r12;
  const Xbyak::Reg64 res_ = r13, res_stride_ = r14, res_stride3_ = r15;
};

}  // namespace sparq::jit
