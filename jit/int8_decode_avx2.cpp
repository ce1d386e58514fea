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

// Dequantize, bias, activation, residual, store: per token, rows 0-7 and 8-15.
void DecodeAvx2Generator::finish() {
  const Ymm xs = ymm8, ws = ymm9, b = ymm10, t0 = ymm11, t1 = ymm12, t2 = ymm13;
  const Ymm inv = ymm14, qmax = ymm15;
  group_row_offset(rax);
  mov(rbx, ARG(w_scale));
  add(rbx, rax);
  mov(r12, ARG(bias));
  add(r12, rax);
  mov(rax, ARG(x_scale));
  if (key_.int8_output) {
    vbroadcastss(inv, ARG(inv_y_scale));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
  }
  // rcx walks y's tokens, rdx residual's (the entry registers are free now).
  mov(rcx, y_);
  if (key_.operand != Operand::none) mov(rdx, res_);
  for (int t = 0; t < key_.tokens; ++t) {
    vbroadcastss(xs, dword[rax + 4 * t]);
    for (int h = 0; h < 2; ++h) {
      const Ymm v = acc(t, h);
      vmovups(ws, ptr[rbx + 32 * h]);
      vmovups(b, ptr[r12 + 32 * h]);
      vcvtdq2ps(v, v);
      vmulps(v, v, xs);
      vfmadd213ps(v, ws, b);
      epilogue_.activation(key_.activation, v, t0, t1, t2);
      epilogue_.combine(key_.operand, v, ptr[rdx + 32 * h]);
      if (key_.int8_output) {
        epilogue_.requantize(v, inv, qmax, epilogue_.constant(EpilogueEmitter::kQuantMin));
        vextracti128(Xmm(t0.getIdx()), v, 1);
        vpackssdw(Xmm(v.getIdx()), Xmm(v.getIdx()), Xmm(t0.getIdx()));
        vpacksswb(Xmm(v.getIdx()), Xmm(v.getIdx()), Xmm(v.getIdx()));
        vmovq(ptr[rcx + 8 * h], Xmm(v.getIdx()));
      } else {
        vmovups(ptr[rcx + 32 * h], v);
      }
    }
    add(rcx, y_stride_);
    if (key_.operand != Operand::none) add(rdx, res_stride_);
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
