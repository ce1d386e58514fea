// The AVX-512 2:4 table kernel (int8 on vpdpbusd, bf16 on vdpbf16ps): per group of 4 rows, per
// unit of the chunk, one 24-byte entry (4 table offsets, 4 weights) and 16 table loads feeding
// 16 dot products into the 4 rows x 64 tokens of zmm accumulators. Bound by the loads: one
// table vector per product (tokens in the lanes cannot reuse a loaded vector across rows that
// keep different columns), and Zen 4 loads one zmm per cycle where it issues one product per
// cycle; each product counts twice against a dense kernel's. Measured on Zen 4 (docs/
// benchmarks-avx512.md): bf16 with its table in L1 ~0.6 products per cycle; int8, whose table
// (36 combinations per 8 columns) lives in L2, ~0.4.
#include <cstddef>

#include "jit/block_tile_avx512.hpp"
#include "jit/nm_table_kernel.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) arg(offsetof(BlockTileArgs, field))

class NmTableGenerator : public Avx512TileGenerator {
 public:
  explicit NmTableGenerator(const NmTableKernelKey& key)
      : int8_(key.type == sparse::NmTableType::int8), quarters_(key.quarters) {
    const Address flags = byte[args_ + offsetof(BlockTileArgs, chunk_flags)];
    preamble();
    mov(x_, ARG(x));
    mov(group_, ARG(group_begin));
    mov(y_, ARG(stage));
    mov(partial_, ARG(partial));
    // The chunk's entries are stored group after group: entry_ walks them across the groups.
    mov(entry_, ARG(entries));
    Label group_loop, from_partial, run, keep, next, done;
    cmp(group_, ARG(group_end));
    je(done, T_NEAR);
    L(group_loop);
    {
      mov(count_, ARG(chunk_units));
      test(flags, static_cast<uint8_t>(kFirstChunk));
      jz(from_partial, T_NEAR);
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < quarters_; ++q) vpxord(acc(r, q), acc(r, q), acc(r, q));
      jmp(run, T_NEAR);
      L(from_partial);
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < quarters_; ++q) vmovdqa32(acc(r, q), ptr[partial_ + 64 * (4 * r + q)]);
      L(run);
      prefetch_entries(key.type);
      units(sparse::nm_table_unit_bytes(key.type, quarters_));
      test(flags, static_cast<uint8_t>(kLastChunk));
      jz(keep, T_NEAR);
      tile_post_ops(key.post_ops(), quarters_);
      for (int q = 0; q < quarters_; ++q) store_quarter(q, quarters_);
      jmp(next, T_NEAR);
      L(keep);
      for (int r = 0; r < 4; ++r)
        for (int q = 0; q < quarters_; ++q) vmovdqa32(ptr[partial_ + 64 * (4 * r + q)], acc(r, q));
      L(next);
      add(y_, 16);  // the next group's 4 rows in the stage
      add(partial_, 16 * 64);
      add(group_, sizeof(int64_t));
      cmp(group_, ARG(group_end));
      jne(group_loop, T_NEAR);
    }
    test(flags, static_cast<uint8_t>(kLastChunk));
    jz(done, T_NEAR);
    copy_out(key.post_ops());
    L(done);
    postamble();
    epilogue_.emit_table();
    finalize(nm_table_features(key.type));
  }

 private:
  // The entries of a layer with more than ~6 MiB of them (4096 x 4096 bf16: 25 MiB) stream from
  // memory once per slice, and the hardware prefetcher alone left the kernel waiting on them:
  // prefetching, once per group, the lines a group's chunk spans about two groups ahead took bf16
  // 4096 x 4096 from 1.18x to 1.44x oneDNN on Zen 4 (3072 x 768, whose entries stay in L3,
  // unchanged).
  void prefetch_entries(sparse::NmTableType type) {
    const int64_t group_bytes = sparse::nm_table_chunk_units(type) * sparse::kNmTableEntryBytes;
    const int64_t lines = (group_bytes + 63) / 64 + 1;
    for (int64_t i = 0; i < lines; ++i)
      prefetcht0(ptr[entry_ + static_cast<int>(kPrefetchDistance + 64 * i)]);
  }
  static constexpr int64_t kPrefetchDistance = 1024;

  // count_ units from entry_, the table from x_: accumulators (zmm0..15) += the products.
  void units(int64_t unit_bytes) {
    const Reg64 table = r9, offsets = rbx;
    const Zmm weight[2] = {zmm24, zmm25}, weights = zmm26;
    mov(table, x_);
    Label loop, end;
    test(count_, count_);
    jz(end, T_NEAR);
    L(loop);
    {
      mov(offsets, qword[entry_]);
      // The 4 rows' weights in one load, each spread over the lanes by vpshufd (the load ports
      // are the bottleneck; the shuffle pipes are idle): ~5 % faster than 4 vpbroadcastd on
      // Zen 4.
      vbroadcasti32x4(weights, ptr[entry_ + 8]);
      for (int r = 0; r < 4; ++r) {
        movzx(eax, offsets.cvt16());
        if (r < 3) shr(offsets, 16);
        const Zmm w = weight[r % 2];
        vpshufd(w, weights, static_cast<uint8_t>(r * 0x55));
        for (int q = 0; q < quarters_; ++q) {
          const Zmm t = Zmm(16 + 4 * (r % 2) + q);
          // Entries hold combination * 64; a combination spans 64 * quarters bytes.
          // A separate load, not vdpbf16ps's memory operand (1-2 % faster on Zen 4): Bochs 3.0,
          // which runs this kernel in the emulated test lane, computes that form wrongly.
          vmovdqu32(t, ptr[table + rax * quarters_ + 64 * q]);
          if (int8_)
            vpdpbusd(acc(r, q), t, w);
          else
            vdpbf16ps(acc(r, q), t, w);
        }
      }
      add(entry_, sparse::kNmTableEntryBytes);
      add(table, static_cast<uint32_t>(unit_bytes));
      dec(count_);
      jnz(loop);
    }
    L(end);
  }

  const bool int8_;
  const int quarters_;
  const Reg64 partial_ = r12;
};

#undef ARG

class Avx512NmTableKernel final : public NmTableKernel {
 public:
  explicit Avx512NmTableKernel(const NmTableKernelKey& key) : NmTableKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.run(&args); }

 private:
  NmTableGenerator code_;
};

}  // namespace

std::unique_ptr<NmTableKernel> make_nm_table_kernel_avx512(const NmTableKernelKey& key) {
  return std::make_unique<Avx512NmTableKernel>(key);
}

}  // namespace sparq::jit
