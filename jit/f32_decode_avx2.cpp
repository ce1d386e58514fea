// AVX2 variant of the f32/bf16 decode kernel (sparse/f32_decode_pack.hpp), 1..4 tokens.
//
// Per entry (one column c of a 16-row group): fp32 weights are FMA memory operands; bf16 weights
// are widened once (2 x vpmovzxwd + vpslld 16) and reused by every token. Per token: broadcast
// x[c], 2 x vfmadd231ps into its accumulators (rows 0-7, 8-15). The epilogue adds the bias,
// applies the activation and the residual and stores both halves straight into y.
#include <cstddef>

#include "jit/decode_generator.hpp"
#include "jit/f32_decode_kernel.hpp"
#include "sparse/f32_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) arg(offsetof(F32DecodeArgs, field))

class F32DecodeAvx2Generator : public DecodeGenerator<F32DecodeArgs> {
 public:
  explicit F32DecodeAvx2Generator(const F32DecodeKey& key) : key_(key) {
    generate_decode_loop(key.tokens, key.operand != Operand::none,
                         sparse::kF32DecodeRows * sizeof(float), [&] {
                           accumulate();
                           finish();
                         });
    finalize(features_of(Isa::avx2));
  }

 private:
  int entry_bytes() const { return key_.bf16 ? 36 : 68; }
  void accumulate();
  void finish();

  const F32DecodeKey key_;
};

void F32DecodeAvx2Generator::accumulate() {
  group_entries(entry_bytes());
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

// The key's post-ops per token on rows 0-7 and 8-15 at once (two lanes, interleaved).
void F32DecodeAvx2Generator::finish() {
  const PostOpList post_ops = key_.post_ops();
  group_row_offset(rbx);  // the group's biases
  add(rbx, ARG(bias));
  mov(rax, y_);
  if (post_ops.has(PostOpKind::binary)) mov(rdx, res_);
  PostOpSources<Ymm> sources;
  sources.bias = [&](int h) { return ptr[rbx + 32 * h]; };
  sources.tensor = [&](int h) { return ptr[rdx + 32 * h]; };
  sources.destination = [&](int h) { return ptr[rax + 32 * h]; };
  for (int t = 0; t < key_.tokens; ++t) {
    const EpilogueEmitter::Lane<Ymm> lanes[2] = {{acc(t, 0), ymm8, ymm9, ymm10},
                                                 {acc(t, 1), ymm11, ymm12, ymm13}};
    epilogue_.apply(post_ops, std::span<const EpilogueEmitter::Lane<Ymm>>(lanes), sources);
    add(rax, y_stride_);
    if (post_ops.has(PostOpKind::binary)) add(rdx, res_stride_);
  }
}

#undef ARG

class Avx2F32Decode final : public F32DecodeKernel {
 public:
  explicit Avx2F32Decode(const F32DecodeKey& key) : F32DecodeKernel(key), code_(key) {}
  void run(const F32DecodeArgs& args) const override { code_.run(&args); }

 private:
  F32DecodeAvx2Generator code_;
};

}  // namespace

std::unique_ptr<F32DecodeKernel> make_f32_decode_avx2(const F32DecodeKey& key) {
  return std::make_unique<Avx2F32Decode>(key);
}

}  // namespace sparq::jit
