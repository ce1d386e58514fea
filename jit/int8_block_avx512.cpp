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
  explicit Avx512VnniGenerator(const Int8KernelKey& key)
      : quarters_(key.quarters), vbmi_(key.vbmi) {
    generate_pipelined(
        key.post_ops(),
        [&] {
          if (quarters_ == 1) {
            // The column-gathering permutations, loaded once per call; zmm30/31 outlive the
            // groups (the epilogue and stores use zmm0..29).
            vmovdqu32(zmm30, ptr[rip + gather_]);
            vmovdqu32(zmm31, ptr[rip + gather_ + 64]);
            if (vbmi_) vmovdqu32(zmm31, ptr[rip + gather_ + 128]);
          }
        },
        [&] {
          if (quarters_ == 1)
            accumulate_quarter();
          else
            accumulate(key.prefetch_columns);
          tile_post_ops(key.post_ops(), quarters_);
          for (int q = 0; q < quarters_; ++q) store_quarter(q, quarters_);
        });
    if (quarters_ == 1) emit_gather_table();
    finalize(vbmi_ ? vbmi_features() : features_of(Isa::avx512_vnni));
  }

 private:
  void accumulate(bool prefetch_columns);
  void accumulate_quarter();
  void emit_gather_table();

  const int quarters_;
  const bool vbmi_;
  Label gather_;
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

// 16 tokens in token order: per entry the 4 columns' 16 bytes go into the 4 128-bit lanes
// (a load and 3 vinserti32x4), vpermd gathers dword L of every column into lane L (tokens
// 4L..4L+3 of c0..c3) and an in-lane vpshufb turns each lane's 4x4 bytes into the vpdpbusd dwords
// (c0, c1, c2, c3) of tokens 4L..4L+3 (with VBMI one vpermb does both); then 4 vpdpbusd. Entries
// alternate between two accumulator sets (acc(r, 0), acc(r, 1)) to cover vpdpbusd's latency.
// Measured on Zen 4 with a throughput loop: 2.6 ns per entry (1.9 with vpermb) against ~7.7 for
// the 64-token tile, which costs the same at 1 and at 64 tokens.
void Avx512VnniGenerator::accumulate_quarter() {
  for (int r = 0; r < 4; ++r)
    for (int set = 0; set < 2; ++set) vpxord(acc(r, set), acc(r, set), acc(r, set));
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  shl(entry_, 5);
  add(entry_, ARG(entries));
  auto entry = [&](int at, int set) {
    const Zmm x = Zmm(16 + set);
    mov(eax, dword[entry_ + at]);
    mov(r8d, dword[entry_ + at + 4]);
    mov(ebx, dword[entry_ + at + 8]);
    mov(r9d, dword[entry_ + at + 12]);
    vmovdqu8(Xmm(x.getIdx()), ptr[x_ + rax]);
    vinserti32x4(x, x, ptr[x_ + r8], 1);
    vinserti32x4(x, x, ptr[x_ + rbx], 2);
    vinserti32x4(x, x, ptr[x_ + r9], 3);
    if (vbmi_) {
      vpermb(x, zmm31, x);
    } else {
      vpermd(x, zmm30, x);
      vpshufb(x, x, zmm31);
    }
    for (int r = 0; r < 4; ++r) {
      const Zmm w = Zmm(20 + 4 * set + r);
      vpbroadcastd(w, ptr[entry_ + at + 16 + 4 * r]);
      vpdpbusd(acc(r, set), x, w);
    }
  };
  // count_ counts down by pairs (r12 and r15 hold the deferred copy-out's state).
  Label pairs, single, end;
  cmp(count_, 2);
  jb(single, T_NEAR);
  L(pairs);
  entry(0, 0);
  entry(32, 1);
  add(entry_, 64);
  sub(count_, 2);
  cmp(count_, 2);
  jae(pairs, T_NEAR);
  L(single);
  test(count_, count_);
  jz(end, T_NEAR);
  entry(0, 0);
  L(end);
  for (int r = 0; r < 4; ++r) vpaddd(acc(r, 0), acc(r, 0), acc(r, 1));
}

void Avx512VnniGenerator::emit_gather_table() {
  align(64);
  L(gather_);
  // vpermd: lane L, dword j <- column j's dword L (source dword 4j + L).
  for (int lane = 0; lane < 4; ++lane)
    for (int j = 0; j < 4; ++j) dd(static_cast<uint32_t>(4 * j + lane));
  // vpshufb, in every lane: byte 4k + j <- byte 4j + k.
  for (int lane = 0; lane < 4; ++lane)
    for (int k = 0; k < 4; ++k)
      for (int j = 0; j < 4; ++j) db(static_cast<uint8_t>(4 * j + k));
  // vpermb, both at once: byte 4t + j (token t's column j) <- byte 16j + t.
  for (int t = 0; t < 16; ++t)
    for (int j = 0; j < 4; ++j) db(static_cast<uint8_t>(16 * j + t));
}

#undef ARG

class Avx512VnniKernel final : public Int8BlockKernel {
 public:
  explicit Avx512VnniKernel(const Int8KernelKey& key) : Int8BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 16 * key().quarters; }
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
