// AVX2 variant of the f32 2:4 tile kernel (sparse/f32_nm_pack.hpp).
//
// Per block of 4 input columns and row r of the group: the 2 kept values are broadcast and each
// multiplies the 16 activations of its column, read straight from the slice as FMA memory
// operands at (block base + the entry's byte offset): 2 x (1 broadcast, 2 vfmadd231ps) after one
// 8-byte load of the block's offsets. Loads, not FMAs, bound it (about 3 per 32 MACs, where the
// 4x1 kernel needs 7 per 64), but it does half the MACs of dense. 8 ymm accumulators (4 rows x
// 16 tokens).
#include <cstddef>

#include "jit/block_tile_avx2.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparse/f32_nm_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class F32NmAvx2Generator : public Avx2TileGenerator {
 public:
  explicit F32NmAvx2Generator(const F32KernelKey& key) {
    generate_group_loop(
        key.operand != Operand::none, 4, [] {},
        [&] {
          accumulate();
          tile_post_ops(key.post_ops());
          store_half(0, key.post_ops());
          store_half(1, key.post_ops());
        });
    finalize(features_of(Isa::avx2));
  }

 private:
  void accumulate();
};

void F32NmAvx2Generator::accumulate() {
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) vxorps(acc(r, h), acc(r, h), acc(r, h));
  // entry_ = entries + 40 * group_begin[g]; count_ = blocks of the group; column_ walks the
  // slice 4 columns (4 x 64 bytes) per block.
  const Reg64 column = r9;
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  lea(entry_, ptr[entry_ + entry_ * 4]);
  shl(entry_, 3);
  add(entry_, arg(offsetof(BlockTileArgs, entries)));
  mov(column, x_);
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm w[2] = {ymm12, ymm13};
    const Reg64 offset[2] = {rax, rbx};
    // The 8 offset bytes in one load, taken apart in a register: loads, not ALU ops, are what
    // this loop runs short of (measured 5-10 % faster than 8 byte loads).
    const Reg64 offsets = r8;
    mov(offsets, qword[entry_]);
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 2; ++j) {
        movzx(offset[j].cvt32(), offsets.cvt8());
        shr(offsets, 8);
        vbroadcastss(w[j], dword[entry_ + 8 + 8 * r + 4 * j]);
        vfmadd231ps(acc(r, 0), w[j], ptr[column + offset[j] * 4]);
        vfmadd231ps(acc(r, 1), w[j], ptr[column + offset[j] * 4 + 32]);
      }
    add(entry_, sparse::kF32NmEntryBytes);
    add(column, 4 * 64);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

class Avx2NmKernel final : public F32BlockKernel {
 public:
  explicit Avx2NmKernel(const F32KernelKey& key) : F32BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 16; }

 private:
  F32NmAvx2Generator code_;
};

}  // namespace

std::unique_ptr<F32BlockKernel> make_f32_nm_kernel_avx2(const F32KernelKey& key) {
  return std::make_unique<Avx2NmKernel>(key);
}

}  // namespace sparq::jit
