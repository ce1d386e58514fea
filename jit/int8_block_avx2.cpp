// AVX2 variant of the int8 4x1 block-sparse tile kernel (pairs_i16 layout).
//
// Per entry (two input columns c0, c1 of one 4-row group) and the slice's 16 tokens:
//   2 loads of 16 s16 activations, vpunpck{l,h}wd -> dwords (x[c0][t], x[c1][t]),
//   per row: broadcast dword (w[r][c0], w[r][c1]), 2 x (vpmaddwd + vpaddd).
// A 4-row x 16-token tile keeps 8 ymm accumulators; s16 products are exact, so the result equals
// the int32 reference bit for bit before the float epilogue. One call runs a block of groups
// over one slice, which stays in L1 while the groups' entries stream past.
#include <cstddef>

#include "jit/block_tile_avx2.hpp"
#include "jit/int8_block_kernel.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class Avx2Generator : public Avx2TileGenerator {
 public:
  explicit Avx2Generator(const Int8KernelKey& key) {
    generate(key);
    finalize(features_of(Isa::avx2));
  }

 private:
  void generate(const Int8KernelKey& key);
  void accumulate(bool prefetch_columns);

  const Ymm x_scale_[2] = {ymm8, ymm9};  // kept for the whole call; the inner loop uses ymm12-15
};

#define ARG(field) arg(offsetof(BlockTileArgs, field))

void Avx2Generator::generate(const Int8KernelKey& key) {
  generate_group_loop(
      key.operand != Operand::none, key.int8_output ? 1 : 4,
      [&] {
        // The slice's token scales, the same for every group: ymm8 (half 0), ymm9 (half 1).
        mov(rax, ARG(x_scale));
        vmovups(x_scale_[0], ptr[rax]);
        vmovups(x_scale_[1], ptr[rax + 8 * sizeof(float)]);
      },
      [&] {
        accumulate(key.prefetch_columns);
        tile_post_ops(key.post_ops(), x_scale_);
        store_half(0, key.post_ops());
        store_half(1, key.post_ops());
      });
}

void Avx2Generator::accumulate(bool prefetch_columns) {
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) vpxor(acc(r, h), acc(r, h), acc(r, h));
  // entry_ = entries + 24 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  lea(entry_, ptr[entry_ + entry_ * 2]);
  shl(entry_, 3);
  add(entry_, ARG(entries));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm a = ymm12, b = ymm13, hi = ymm14, prod = ymm15;
    mov(eax, dword[entry_]);
    mov(r8d, dword[entry_ + 4]);
    vmovdqu(a, ptr[x_ + rax]);
    if (prefetch_columns) {
      constexpr int ahead = sparse::kEntryReadAhead * 24;
      mov(ebx, dword[entry_ + ahead]);
      prefetcht0(ptr[x_ + rbx]);
      mov(ebx, dword[entry_ + ahead + 4]);
      prefetcht0(ptr[x_ + rbx]);
    }
    // The second column is read twice as a memory operand: one vector load fewer per entry, and
    // the vector-op throughput, not L1 bandwidth, is what bounds this loop.
    vpunpckhwd(hi, a, ptr[x_ + r8]);  // tokens 4-7, 12-15
    vpunpcklwd(a, a, ptr[x_ + r8]);   // tokens 0-3, 8-11
    for (int r = 0; r < 4; ++r) {
      vpbroadcastd(b, dword[entry_ + 8 + 4 * r]);
      vpmaddwd(prod, a, b);
      vpaddd(acc(r, 0), acc(r, 0), prod);
      vpmaddwd(b, hi, b);
      vpaddd(acc(r, 1), acc(r, 1), b);
    }
    add(entry_, 24);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

#undef ARG

class Avx2Kernel final : public Int8BlockKernel {
 public:
  explicit Avx2Kernel(const Int8KernelKey& key) : Int8BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 16; }

 private:
  Avx2Generator code_;
};

}  // namespace

std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx2(const Int8KernelKey& key) {
  return std::make_unique<Avx2Kernel>(key);
}

}  // namespace sparq::jit
