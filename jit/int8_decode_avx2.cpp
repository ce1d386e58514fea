// AVX2 variant of the int8 decode kernel (sparse/int8_decode_pack.hpp), 1..4 tokens.
//
// Per entry (a pair of columns c0, c1 of one 16-row group):
//   2 vpmovsxbw: the 32 interleaved weight bytes -> (w[r][c0], w[r][c1]) s16 pairs, rows 0-7
//   and 8-15;
//   per token: vpbroadcastw x[c0], vpbroadcastw x[c1], vpblendw -> (x[c0], x[c1]) in every
//   dword, then 2 x (vpmaddwd + vpaddd) into the token's two accumulators (rows 0-7, 8-15).
// s16 products summed in pairs are exact, so the sums equal the int32 reference. The epilogue
// needs no transpose: the lanes are output rows, contiguous in y.
#include <cstddef>

#include "jit/decode_generator.hpp"
#include "jit/int8_decode_kernel.hpp"
#include "sparse/int8_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) arg(offsetof(DecodeArgs, field))

class DecodeAvx2Generator : public DecodeGenerator<DecodeArgs> {
 public:
  explicit DecodeAvx2Generator(const DecodeKernelKey& key) : key_(key) {
    generate_decode_loop(key.tokens, key.operand != Operand::none,
                         sparse::kDecodeRows * (key.int8_output ? 1 : 4), [&] {
                           accumulate();
                           finish();
                         });
    finalize(features_of(Isa::avx2));
  }

 private:
  void accumulate();
  void finish();

  const DecodeKernelKey key_;
};

void DecodeAvx2Generator::accumulate() {
  group_entries(sparse::kDecodeEntryBytes);
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm w_lo = ymm8, w_hi = ymm9, xa = ymm10, xb = ymm11, prod = ymm12;
    movzx(eax, word[entry_]);
    movzx(ebx, word[entry_ + 2]);
    vpmovsxbw(w_lo, ptr[entry_ + 4]);
    vpmovsxbw(w_hi, ptr[entry_ + 20]);
    for (int t = 0; t < key_.tokens; ++t) {
      vpbroadcastw(xa, word[x_[t] + rax * 2]);
      vpbroadcastw(xb, word[x_[t] + rbx * 2]);
      vpblendw(xa, xa, xb, 0xaa);  // odd words from c1
      vpmaddwd(prod, w_lo, xa);
      vpaddd(acc(t, 0), acc(t, 0), prod);
      vpmaddwd(prod, w_hi, xa);
      vpaddd(acc(t, 1), acc(t, 1), prod);
    }
    add(entry_, sparse::kDecodeEntryBytes);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

// The key's post-ops per token on rows 0-7 and 8-15 at once (two lanes, interleaved).
void DecodeAvx2Generator::finish() {
  const Ymm xs = ymm8, inv = ymm14;
  const PostOpList post_ops = key_.post_ops();
  group_row_offset(rax);
  mov(rbx, ARG(w_scale));
  add(rbx, rax);
  mov(r12, ARG(bias));
  add(r12, rax);
  mov(rax, ARG(x_scale));
  PostOpSources<Ymm> sources;
  sources.x_scale = [&](int) { return xs; };
  sources.w_scale = [&](int h) { return ptr[rbx + 32 * h]; };
  sources.bias = [&](int h) { return ptr[r12 + 32 * h]; };
  sources.tensor = [&](int h) { return ptr[rdx + 32 * h]; };
  sources.destination = [&](int h) { return ptr[rcx + output_bytes(post_ops.output()) * 8 * h]; };
  if (post_ops.output() == TileOutput::s8) {
    vbroadcastss(inv, ARG(inv_y_scale));
    sources.inv_y_scale = inv;
  }
  // rcx walks y's tokens, rdx residual's (the entry registers are free now).
  mov(rcx, y_);
  if (post_ops.has(PostOpKind::binary)) mov(rdx, res_);
  for (int t = 0; t < key_.tokens; ++t) {
    vbroadcastss(xs, dword[rax + 4 * t]);
    const EpilogueEmitter::Lane<Ymm> lanes[2] = {{acc(t, 0), ymm9, ymm10, ymm11},
                                                 {acc(t, 1), ymm12, ymm13, ymm15}};
    epilogue_.apply(post_ops, std::span<const EpilogueEmitter::Lane<Ymm>>(lanes), sources);
    add(rcx, y_stride_);
    if (post_ops.has(PostOpKind::binary)) add(rdx, res_stride_);
  }
}

#undef ARG

class Avx2DecodeKernel final : public Int8DecodeKernel {
 public:
  explicit Avx2DecodeKernel(const DecodeKernelKey& key) : Int8DecodeKernel(key), code_(key) {}
  void run(const DecodeArgs& args) const override { code_.run(&args); }

 private:
  DecodeAvx2Generator code_;
};

}  // namespace

std::unique_ptr<Int8DecodeKernel> make_int8_decode_avx2(const DecodeKernelKey& key) {
  return std::make_unique<Avx2DecodeKernel>(key);
}

}  // namespace sparq::jit
