// What the decode-kernel generators (int8, f32/bf16) share: the register roles, the loading of
// the call's arguments (one activation base per token), the loop over a run of 16-row groups,
// and the accumulator convention (token t, rows 0-7 / 8-15 in ymm(2t) / ymm(2t + 1)). Args is the
// family's argument struct; it must have the fields x, x_stride, entries, group_begin, group_end,
// y, y_stride, residual and residual_stride.
#pragma once

#include <cstddef>
#include <cstdint>

#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"

namespace sparq::jit {

template <typename Args>
class DecodeGenerator : public Generator {
 protected:
  DecodeGenerator() : epilogue_(*this) {}

  static Xbyak::Ymm acc(int token, int half) { return Xbyak::Ymm(token * 2 + half); }
  Xbyak::Address arg(size_t offset) const { return ptr[args_ + offset]; }

  // Emits the whole function: for every group, zeroed accumulators, `per_group()` (accumulate
  // and finish), then y (y_group_bytes) and residual (16 floats) advance.
  template <typename PerGroup>
  void generate_decode_loop(int tokens, bool residual, int y_group_bytes, PerGroup per_group) {
    preamble();
    mov(x_[0], arg(offsetof(Args, x)));
    for (int t = 1; t < tokens; ++t) {
      mov(x_[t], x_[t - 1]);
      add(x_[t], arg(offsetof(Args, x_stride)));
    }
    mov(group_, arg(offsetof(Args, group_begin)));
    mov(y_, arg(offsetof(Args, y)));
    mov(y_stride_, arg(offsetof(Args, y_stride)));
    if (residual) {
      mov(res_, arg(offsetof(Args, residual)));
      mov(res_stride_, arg(offsetof(Args, residual_stride)));
    }
    Xbyak::Label group_loop, done;
    cmp(group_, arg(offsetof(Args, group_end)));
    je(done, T_NEAR);
    L(group_loop);
    for (int t = 0; t < tokens; ++t)
      for (int h = 0; h < 2; ++h) vpxor(acc(t, h), acc(t, h), acc(t, h));
    per_group();
    add(y_, y_group_bytes);
    if (residual) add(res_, 16 * sizeof(float));
    add(group_, sizeof(int64_t));
    cmp(group_, arg(offsetof(Args, group_end)));
    jne(group_loop, T_NEAR);
    L(done);
    postamble();
    epilogue_.emit_table();
  }

  // entry_ = entries + entry_bytes * (the group's first entry), count_ = its number of entries.
  void group_entries(int entry_bytes) {
    mov(entry_, qword[group_]);
    mov(count_, qword[group_ + 8]);
    sub(count_, entry_);
    imul(entry_, entry_, entry_bytes);
    add(entry_, arg(offsetof(Args, entries)));
  }

  // Emits software prefetches of the weight stream's next `bytes` (whole lines) 4 KiB ahead when
  // the kernel's key asks for them (decode_prefetch in cpu_tuning.hpp: always at 2-4 tokens, where
  // they gain 5-20 % on Zen 4 too, e.g. int8 2:4 at 4 tokens 836 vs 954 us; at one token where the
  // CPU's hardware prefetchers alone fall short). On Intel 2 and 8 KiB ahead measured like 4, 1 KiB
  // clearly worse.
  void prefetch_weights(bool prefetch, int bytes) {
    constexpr int kDistance = 4096;
    if (!prefetch) return;
    for (int line = 0; line * 64 < bytes; ++line) prefetcht0(ptr[entry_ + kDistance + 64 * line]);
  }

  // reg = byte offset of the current group's 16 rows in the per-row arrays: 64 * local index.
  void group_row_offset(const Xbyak::Reg64& reg) {
    mov(reg, group_);
    sub(reg, arg(offsetof(Args, group_begin)));
    shl(reg, 3);
  }

  EpilogueEmitter epilogue_;
  // rdi: arguments; rsi, r8, r9, r15: token 0..3 activation bases; rdx: entry; rcx: count;
  // rbp: group pointer; r10: y; r11: y stride; r13: residual; r14: residual stride; rax, rbx,
  // r12: scratch.
  const Xbyak::Reg64 args_ = rdi, entry_ = rdx, count_ = rcx, group_ = rbp;
  const Xbyak::Reg64 y_ = r10, y_stride_ = r11, res_ = r13, res_stride_ = r14;
  const Xbyak::Reg64 x_[4] = {rsi, r8, r9, r15};
};

}  // namespace sparq::jit
