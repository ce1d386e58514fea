// AVX2 variant of the f32 4x1 block-sparse tile kernel.
//
// Per entry (one input column c of one 4-row group) and the slice's 16 tokens:
//   2 loads of 8 activations (x[c][t], in the slice's lane order), per row: broadcast w[r][c],
//   2 x vfmadd231ps.
// 8 ymm accumulators (4 rows x 16 tokens) keep both FMA pipes busy through the 4-cycle latency.
// The epilogue adds the bias, applies the activation and stores through the shared transposed
// store (joining the operand).
#include <cstddef>

#include "jit/block_tile_avx2.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparse/f32_block_pack.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class F32Avx2Generator : public Avx2TileGenerator {
 public:
  explicit F32Avx2Generator(const F32KernelKey& key) {
    generate_group_loop(
        key.operand != Operand::none, 4, [] {},
        [&] {
          accumulate(key.prefetch_columns);
          tile_post_ops(key.post_ops());
          store_half(0, key.post_ops());
          store_half(1, key.post_ops());
        });
    finalize(features_of(Isa::avx2));
  }

 private:
  void accumulate(bool prefetch_columns);
};

void F32Avx2Generator::accumulate(bool prefetch_columns) {
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) vxorps(acc(r, h), acc(r, h), acc(r, h));
  // entry_ = entries + 20 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  lea(entry_, ptr[entry_ + entry_ * 4]);
  shl(entry_, 2);
  add(entry_, arg(offsetof(BlockTileArgs, entries)));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm lo = ymm12, hi = ymm13, w = ymm14;
    mov(eax, dword[entry_]);
    vmovups(lo, ptr[x_ + rax]);
    vmovups(hi, ptr[x_ + rax + 32]);
    if (prefetch_columns) {
      // One 64-byte column per entry.
      mov(r8d, dword[entry_ + sparse::kEntryReadAhead * sparse::kF32EntryBytes]);
      prefetcht0(ptr[x_ + r8]);
    }
    for (int r = 0; r < 4; ++r) {
      vbroadcastss(w, dword[entry_ + 4 + 4 * r]);
      vfmadd231ps(acc(r, 0), lo, w);
      vfmadd231ps(acc(r, 1), hi, w);
    }
    add(entry_, sparse::kF32EntryBytes);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

class Avx2Kernel final : public F32BlockKernel {
 public:
  explicit Avx2Kernel(const F32KernelKey& key) : F32BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 16; }

 private:
  F32Avx2Generator code_;
};

}  // namespace

std::unique_ptr<F32BlockKernel> make_f32_kernel_avx2(const F32KernelKey& key) {
  if (key.layout == F32Layout::n2_m4) return make_f32_nm_kernel_avx2(key);
  return std::make_unique<Avx2Kernel>(key);
}

}  // namespace sparq::jit
