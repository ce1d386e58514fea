// AVX2 variant of the f32/bf16 decode kernel (sparse/f32_decode_pack.hpp), 1..4 tokens.
//
// Per entry (one column c of a 16-row group): fp32 weights are FMA memory operands; bf16 weights
// are widened once (2 x vpmovzxwd + vpslld 16) and reused by every token. Per token: broadcast
// x[c], 2 x vfmadd231ps into its accumulators (rows 0-7, 8-15). The epilogue adds the bias,
// applies the activation and the residual and stores both halves straight into y.
#include <cstddef>

#include "jit/epilogue_emitter.hpp"
#include "jit/f32_decode_kernel.hpp"
#include "jit/generator.hpp"
#include "sparse/f32_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) ptr[args_ + offsetof(F32DecodeArgs, field)]

class F32DecodeAvx2Generator : public Generator {
 public:
  explicit F32DecodeAvx2Generator(const F32DecodeKey& key) : epilogue_(*this), key_(key) {
    generate();
    finalize();
  }

 private:
  static Ymm acc(int token, int half) { return Ymm(token * 2 + half); }
  int entry_bytes() const { return key_.bf16 ? 36 : 68; }

  void generate();
  void accumulate();
  void finish();

  EpilogueEmitter epilogue_;
  const F32DecodeKey key_;
  // rdi: arguments; rsi, r8, r9, r15: token 0..3 activations; rdx: entry; rcx: count; rbp: group
  // pointer; r10: y; r11: y stride; r13: residual; r14: residual stride; rax, rbx, r12: scratch.
  const Reg64 args_ = rdi, entry_ = rdx, count_ = rcx, group_ = rbp;
  const Reg64 y_ = r10, y_stride_ = r11, res_ = r13, res_stride_ = r14;
  const Reg64 x_[4] = {rsi, r8, r9, r15};
};

void F32DecodeAvx2Generator::generate() {
  preamble();
  mov(x_[0], ARG(x));
  for (int t = 1; t < key_.tokens; ++t) {
    mov(x_[t], x_[t - 1]);
    add(x_[t], ARG(x_stride));
  }
  mov(group_, ARG(group_begin));
  mov(y_, ARG(y));
  mov(y_stride_, ARG(y_stride));
  if (key_.residual) {
    mov(res_, ARG(residual));
    mov(res_stride_, ARG(residual_stride));
  }
  Label group_loop, done;
  cmp(group_, ARG(group_end));
  je(done, T_NEAR);
  L(group_loop);
  accumulate();
  finish();
  add(y_, sparse::kF32DecodeRows * sizeof(float));
  if (key_.residual) add(res_, sparse::kF32DecodeRows * sizeof(float));
  add(group_, sizeof(int64_t));
  cmp(group_, ARG(group_end));
  jne(group_loop, T_NEAR);
  L(done);
  postamble();
  epilogue_.emit_table();
}

void F32DecodeAvx2Generator::accumulate() {
  for (int t = 0; t < key_.tokens; ++t)
    for (int h = 0; h < 2; ++h) vxorps(acc(t, h), acc(t, h), acc(t, h));
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  imul(entry_, entry_, entry_bytes());
  add(entry_, ARG(entries));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm w_lo = ymm8, w_hi = ymm9, xb = ymm10;
    mov(eax, dword[entry_]);
    if (key_.bf16) {
      vpmovzxwd(w_lo, ptr[entry_ + 4]);
      vpslld(w_lo, w_lo, 16);
      vpmovzxwd(w_hi, ptr[entry_ + 20]);
      vpslld(w_hi, w_hi, 16);
    }
    for (int t = 0; t < key_.tokens; ++t) {
      vbroadcastss(xb, dword[x_[t] + rax * 4]);
      if (key_.bf16) {
        vfmadd231ps(acc(t, 0), w_lo, xb);
        vfmadd231ps(acc(t, 1), w_hi, xb);
      } else {
        vfmadd231ps(acc(t, 0), xb, ptr[entry_ + 4]);
        vfmadd231ps(acc(t, 1), xb, ptr[entry_ + 36]);
      }
    }
    add(entry_, entry_bytes());
    dec(count_);
    jnz(loop);
  }
  L(end);
}

void F32DecodeAvx2Generator::finish() {
  const Ymm t0 = ymm11, t1 = ymm12, t2 = ymm13;
  // rbx = the group's biases: 64 * local group index = 8 * (group_ - group_begin).
  mov(rbx, group_);
  sub(rbx, ARG(group_begin));
  shl(rbx, 3);
  add(rbx, ARG(bias));
  mov(rax, y_);
  if (key_.residual) mov(rdx, res_);
  for (int t = 0; t < key_.tokens; ++t) {
    for (int h = 0; h < 2; ++h) {
      const Ymm v = acc(t, h);
      vaddps(v, v, ptr[rbx + 32 * h]);
      epilogue_.activation(key_.activation, v, t0, t1, t2);
      if (key_.residual) vaddps(v, v, ptr[rdx + 32 * h]);
      vmovups(ptr[rax + 32 * h], v);
    }
    add(rax, y_stride_);
    if (key_.residual) add(rdx, res_stride_);
  }
}

#undef ARG

class Avx2F32Decode final : public F32DecodeKernel {
 public:
  explicit Avx2F32Decode(const F32DecodeKey& key) : F32DecodeKernel(key), code_(key) {}
  void run(const F32DecodeArgs& args) const override { code_.entry()(&args); }

 private:
  F32DecodeAvx2Generator code_;
};

}  // namespace

std::unique_ptr<F32DecodeKernel> make_f32_decode_avx2(const F32DecodeKey& key) {
  return std::make_unique<Avx2F32Decode>(key);
}

}  // namespace sparq::jit
