// AVX-512 VNNI variant of the int8 4x1 block-sparse tile kernel (quads_u8 layout), following the
// ITREX design: per entry (four input columns of one 4-row group) and 64 tokens,
//   4 loads of 64 u8 activations, vpunpck{l,h}bw then vpunpck{l,h}wd -> 4 zmm of dwords
//   (x[c0][t], x[c1][t], x[c2][t], x[c3][t]); the 4 rows' weight quads broadcast into registers;
//   16 x vpdpbusd into 16 zmm accumulators (4 rows x 64 tokens).
// Register operands, not embedded broadcasts: measured on Zen 5, 16 vpdpbusd with {1to16} memory
// operands take ~10 cycles per entry against ~7.3 with 4 vpbroadcastd and register operands (the
// vector-unit bound is 8 per 16 at 2 per cycle).
// Activations are u8 = q + 128; the epilogue subtracts 128 * sum(w[r]) (the compensation).
// Each group's tile goes to the call's L1 stage; the stage is copied to y a token row at a time.
#include <cstddef>

#include "jit/block_tile_avx512.hpp"
#include "jit/int8_block_kernel.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class Avx512VnniGenerator : public Avx512TileGenerator {
 public:
  explicit Avx512VnniGenerator(const Int8KernelKey& key) {
    const TileOutput output = key.int8_output   ? TileOutput::s8
                              : key.bf16_output ? TileOutput::bf16
                                                : TileOutput::f32;
    generate_pipelined(
        key.residual, output, [] {},
        [&] {
          accumulate(key.prefetch_columns);
          dequantize_tile(key.activation);
          for (int q = 0; q < 4; ++q) store_quarter(q);
        });
    finalize(features_of(Isa::avx512_vnni));
  }

 private:
  void accumulate(bool prefetch_columns);
};

#define ARG(field) arg(offsetof(BlockTileArgs, field))

void Avx512VnniGenerator::accumulate(bool prefetch_columns) {
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) vpxord(acc(r, q), acc(r, q), acc(r, q));
  // entry_ = entries + 32 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  shl(entry_, 5);
  add(entry_, ARG(entries));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Zmm c0 = zmm16, c1 = zmm17, c2 = zmm18, c3 = zmm19, lo01 = zmm20, lo23 = zmm21;
    const Zmm quarter[4] = {zmm22, zmm23, zmm24, zmm25};
    const Zmm weight[4] = {zmm26, zmm27, zmm28, zmm29};
    mov(eax, dword[entry_]);
    mov(r8d, dword[entry_ + 4]);
    mov(ebx, dword[entry_ + 8]);
    mov(r9d, dword[entry_ + 12]);
    vmovdqu8(c0, ptr[x_ + rax]);
    vmovdqu8(c1, ptr[x_ + r8]);
    vmovdqu8(c2, ptr[x_ + rbx]);
    vmovdqu8(c3, ptr[x_ + r9]);
    if (prefetch_columns) {
      // The columns of the entry kEntryReadAhead places ahead (entries are padded for it).
      constexpr int ahead = 32 * sparse::kEntryReadAhead;
      for (int c = 0; c < 4; ++c) {
        mov(eax, dword[entry_ + ahead + 4 * c]);
        prefetcht0(ptr[x_ + rax]);
      }
    }
    for (int r = 0; r < 4; ++r) vpbroadcastd(weight[r], ptr[entry_ + 16 + 4 * r]);
    vpunpcklbw(lo01, c0, c1);  // tokens 16L + 0..7
    vpunpckhbw(c0, c0, c1);    // tokens 16L + 8..15
    vpunpcklbw(lo23, c2, c3);
    vpunpckhbw(c2, c2, c3);
    vpunpcklwd(quarter[0], lo01, lo23);
    vpunpckhwd(quarter[1], lo01, lo23);
    vpunpcklwd(quarter[2], c0, c2);
    vpunpckhwd(quarter[3], c0, c2);
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 4; ++r) vpdpbusd(acc(r, q), quarter[q], weight[r]);
    add(entry_, 32);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

#undef ARG

class Avx512VnniKernel final : public Int8BlockKernel {
 public:
  explicit Avx512VnniKernel(const Int8KernelKey& key) : Int8BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 64; }
  bool stores_partial_tiles() const override { return true; }
  bool defers_copy_out() const override { return true; }

 private:
  Avx512VnniGenerator code_;
};

}  // namespace

std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx512_vnni(const Int8KernelKey& key) {
  return std::make_unique<Avx512VnniKernel>(key);
}

}  // namespace sparq::jit
