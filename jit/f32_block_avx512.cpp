// AVX-512F variants of the f32 tile kernels (both layouts), 4 rows x 16 * quarters tokens per tile,
// the tile staged in L1 and copied out a token row at a time (block_tile_avx512.hpp).
//   block_4x1 (64 tokens): per entry (one input column of one 4-row group) 4 zmm loads of the
//     column's activations, 4 broadcast weights, 16 vfmadd231ps into 16 accumulators.
//   n2_m4 (64 tokens): per block of 4 columns and row, the 2 kept values broadcast, each times the
//     4 zmm of its column as FMA memory operands; 16 accumulators. Bound by vector loads, not
//     FMAs: 32 zmm loads and 8 broadcasts per 32 FMAs, at 2 per cycle on Zen 5 (measured), so at
//     best 1.6x a dense kernel's 64 FMAs per 4x4x64 block; measured about 1x oneDNN's f32 GEMM
//     (tokens in lanes cannot reuse a loaded column across rows that keep different columns).
//   bf16_4x1 (64 tokens, AVX512_BF16): per pair of input columns vdpbf16ps on bf16 weights
//     and activations (sparse/bf16_block_pack.hpp).
// Activations: the f32 slice layout of sparse/f32_block_pack.hpp for 16 * quarters tokens, or
// the bf16 one.
#include <cstddef>

#include "jit/block_tile_avx512.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/f32_block_pack.hpp"
#include "sparse/f32_nm_pack.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class F32Avx512Generator : public Avx512TileGenerator {
 public:
  F32Avx512Generator(const F32KernelKey& key, int quarters) : quarters_(quarters) {
    if (key.layout == F32Layout::n2_m4)
      generate_2of4(key);
    else
      generate_pipelined(
          key.post_ops(), [] {},
          [&] {
            if (key.layout == F32Layout::bf16_4x1)
              accumulate_bf16(key.prefetch_columns);
            else
              accumulate_4x1(key.prefetch_columns);
            tile_post_ops(key.post_ops(), quarters_);
            for (int q = 0; q < quarters_; ++q) store_quarter(q, quarters_);
          });
    finalize(key.layout == F32Layout::bf16_4x1 ? bf16_features() : features_of(Isa::avx512));
  }

 private:
  void zero_accumulators() {
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < quarters_; ++q) vpxord(acc(r, q), acc(r, q), acc(r, q));
  }
  void accumulate_4x1(bool prefetch_columns);
  void accumulate_bf16(bool prefetch_columns);
  void generate_2of4(const F32KernelKey& key);
  void blocks_2of4();

  static constexpr int kChunkBlocks = 16;
  const int quarters_;
};

void F32Avx512Generator::accumulate_4x1(bool prefetch_columns) {
  zero_accumulators();
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
    const Zmm column[4] = {zmm16, zmm17, zmm18, zmm19};
    const Zmm w[4] = {zmm20, zmm21, zmm22, zmm23};
    mov(eax, dword[entry_]);
    // Offsets are packed for 64-token slices (column * 256 bytes): a 32-token slice's column is
    // half as far.
    if (quarters_ == 2) shr(eax, 1);
    for (int q = 0; q < quarters_; ++q) vmovups(column[q], ptr[x_ + rax + 64 * q]);
    if (prefetch_columns) {
      mov(r8d, dword[entry_ + sparse::kEntryReadAhead * sparse::kF32EntryBytes]);
      if (quarters_ == 2) shr(r8d, 1);
      for (int q = 0; q < quarters_; ++q) prefetcht0(ptr[x_ + r8 + 64 * q]);
    }
    for (int r = 0; r < 4; ++r) vbroadcastss(w[r], dword[entry_ + 4 + 4 * r]);
    for (int q = 0; q < quarters_; ++q)
      for (int r = 0; r < 4; ++r) vfmadd231ps(acc(r, q), column[q], w[r]);
    add(entry_, sparse::kF32EntryBytes);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

// bf16 pairs: per entry (two input columns of one 4-row group) 4 zmm loads (2 per column, 64
// bf16 tokens each), vpunpck{l,h}wd into 4 vectors of (x[c0][t], x[c1][t]) pairs, the 4 rows'
// weight pairs broadcast, 16 vdpbf16ps: twice the multiply-adds of an fp32 entry in the same
// number of vector instructions.
void F32Avx512Generator::accumulate_bf16(bool prefetch_columns) {
  zero_accumulators();
  // entry_ = entries + 24 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  lea(entry_, ptr[entry_ + entry_ * 2]);
  shl(entry_, 3);
  add(entry_, arg(offsetof(BlockTileArgs, entries)));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Zmm a[2] = {zmm16, zmm17}, b[2] = {zmm18, zmm19};
    const Zmm pair[4] = {zmm20, zmm21, zmm22, zmm23};
    const Zmm w[4] = {zmm24, zmm25, zmm26, zmm27};
    mov(eax, dword[entry_]);
    mov(ebx, dword[entry_ + 4]);
    for (int h = 0; h < 2; ++h) {
      vmovdqu16(a[h], ptr[x_ + rax + 64 * h]);
      vmovdqu16(b[h], ptr[x_ + rbx + 64 * h]);
    }
    if (prefetch_columns) {
      constexpr int ahead = sparse::kEntryReadAhead * sparse::kBf16EntryBytes;
      for (int j = 0; j < 2; ++j) {
        mov(r8d, dword[entry_ + ahead + 4 * j]);
        prefetcht0(ptr[x_ + r8]);
        prefetcht0(ptr[x_ + r8 + 64]);
      }
    }
    for (int r = 0; r < 4; ++r) vpbroadcastd(w[r], ptr[entry_ + 8 + 4 * r]);
    for (int h = 0; h < 2; ++h) {
      vpunpcklwd(pair[2 * h], a[h], b[h]);
      vpunpckhwd(pair[2 * h + 1], a[h], b[h]);
    }
    for (int q = 0; q < 4; ++q)
      for (int r = 0; r < 4; ++r) vdpbf16ps(acc(r, q), pair[q], w[r]);
    add(entry_, sparse::kBf16EntryBytes);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

// 2:4: every group has the same blocks, so the call runs them in chunks of kChunkBlocks blocks
// (kChunkBlocks * 4 columns of activations, 16 KiB), chunk-outer and group-inner: a chunk is read
// from L2 once and reused from L1 by all the call's groups, whose partial sums wait in the scratch
// after the stage between chunks (4096 x 4096 at 128 tokens on Zen 5: 0.50x -> 0.97x oneDNN).
void F32Avx512Generator::generate_2of4(const F32KernelKey& key) {
  static_assert(kScratchBytes >= kGroupsPerCall * 16 * 64, "16 partial sums per group");
  const Reg64 chunk_begin = r12, blocks = r13, chunk_blocks = r14, partial = r15;
  const int column_bytes = 64 * quarters_;
  preamble();
  mov(x_, arg(offsetof(BlockTileArgs, x)));
  mov(group_, arg(offsetof(BlockTileArgs, group_begin)));
  mov(blocks, qword[group_ + 8]);
  sub(blocks, qword[group_]);
  xor_(chunk_begin, chunk_begin);
  Label chunk_loop, group_loop, zero, run, keep, next, done;
  L(chunk_loop);
  mov(chunk_blocks, blocks);
  sub(chunk_blocks, chunk_begin);
  mov(rax, kChunkBlocks);
  cmp(chunk_blocks, rax);
  cmova(chunk_blocks, rax);
  mov(group_, arg(offsetof(BlockTileArgs, group_begin)));
  mov(y_, arg(offsetof(BlockTileArgs, stage)));
  lea(partial, ptr[y_ + kStageBytes]);
  L(group_loop);
  {
    // entry_ = entries + 40 * (group_begin[g] + chunk_begin); the chunk's activation columns.
    mov(entry_, qword[group_]);
    add(entry_, chunk_begin);
    imul(entry_, entry_, sparse::kF32NmEntryBytes);
    add(entry_, arg(offsetof(BlockTileArgs, entries)));
    imul(r9, chunk_begin, 4 * column_bytes);
    add(r9, x_);
    // This group's entries of the next chunk, a call's worth of work ahead: the call's groups
    // read 8 streams of entries 40 KiB apart (4096 x 4096), which the hardware prefetcher alone
    // did not keep ahead of once the layer's 42 MiB of entries no longer fit the L3 (Zen 4,
    // 128 tokens: 4096 x 4096 1.39x -> 1.55x oneDNN, 3072 x 768 1.51x -> 1.54-1.60x).
    for (int i = 0; i <= kChunkBlocks * sparse::kF32NmEntryBytes / 64; ++i)
      prefetcht0(ptr[entry_ + kChunkBlocks * sparse::kF32NmEntryBytes + 64 * i]);
    mov(count_, chunk_blocks);
    test(chunk_begin, chunk_begin);
    jz(zero, T_NEAR);
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < quarters_; ++q)
        vmovups(acc(r, q), ptr[partial + 64 * (quarters_ * r + q)]);
    jmp(run, T_NEAR);
    L(zero);
    zero_accumulators();
    L(run);
    blocks_2of4();
    lea(rax, ptr[chunk_begin + chunk_blocks]);
    cmp(rax, blocks);
    jne(keep, T_NEAR);
    tile_post_ops(key.post_ops(), quarters_);
    for (int q = 0; q < quarters_; ++q) store_quarter(q, quarters_);
    jmp(next, T_NEAR);
    L(keep);
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < quarters_; ++q)
        vmovups(ptr[partial + 64 * (quarters_ * r + q)], acc(r, q));
    L(next);
    add(y_, 16);  // the next group's 4 rows in the stage
    add(partial, 64 * 4 * quarters_);
    add(group_, sizeof(int64_t));
    cmp(group_, arg(offsetof(BlockTileArgs, group_end)));
    jne(group_loop, T_NEAR);
  }
  add(chunk_begin, chunk_blocks);
  cmp(chunk_begin, blocks);
  jb(chunk_loop, T_NEAR);
  copy_out(key.post_ops());
  L(done);
  postamble();
  epilogue_.emit_table();
}

// The blocks [entry_, + count_) of one group into the accumulators; r9 walks the activations
// 4 columns per block.
void F32Avx512Generator::blocks_2of4() {
  const Reg64 column = r9, offsets = r8;
  const int column_bytes = 64 * quarters_;
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Zmm w[2] = {zmm16, zmm17}, values[2] = {zmm18, zmm19};
    const Reg64 offset[2] = {rax, rbx};
    mov(offsets, qword[entry_]);
    // Two loads for the 8 values (rows 0-1, rows 2-3 in every 128-bit lane), each spread over
    // the lanes by vpshufd: the loop is bound by loads (1 per cycle on Zen 4), not shuffles.
    for (int h = 0; h < 2; ++h) vbroadcasti32x4(values[h], ptr[entry_ + 8 + 16 * h]);
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 2; ++j) {
        movzx(offset[j].cvt32(), offsets.cvt8());
        if (r < 3 || j < 1) shr(offsets, 8);
        vpshufd(w[j], values[r / 2], static_cast<uint8_t>((2 * (r % 2) + j) * 0x55));
        for (int q = 0; q < quarters_; ++q)
          // Offsets are packed for 64-token slices (column * 64 floats): scaled by the quarters.
          vfmadd231ps(acc(r, q), w[j], ptr[column + offset[j] * quarters_ + 64 * q]);
      }
    add(entry_, sparse::kF32NmEntryBytes);
    add(column, 4 * column_bytes);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

class Avx512F32Kernel final : public F32BlockKernel {
 public:
  Avx512F32Kernel(const F32KernelKey& key, int quarters)
      : F32BlockKernel(key), quarters_(quarters), code_(key, quarters) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }
  int tile_tokens() const override { return 16 * quarters_; }
  bool stores_partial_tiles() const override { return true; }
  bool defers_copy_out() const override { return key().layout != F32Layout::n2_m4; }

 private:
  int quarters_;
  F32Avx512Generator code_;
};

}  // namespace

std::unique_ptr<F32BlockKernel> make_f32_kernel_avx512(const F32KernelKey& key) {
  return std::make_unique<Avx512F32Kernel>(key, key.quarters);
}

}  // namespace sparq::jit
