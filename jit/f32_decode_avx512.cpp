// AVX-512F variant of the f32/bf16 decode kernel (sparse/f32_decode_pack.hpp), 1..4 tokens.
//
// Per entry (one column c of a 16-row group): the 16 weights in one zmm (fp32 as the FMA's
// memory operand; bf16 widened once by vpmovzxwd + vpslld and reused by every token); per token
// one broadcast of x[c] and one vfmadd231ps. Entries go round-robin to four accumulator chains
// per token (one chain is bound by the FMA latency), and calls of 2-4 tokens prefetch the weight
// stream (DecodeGenerator::prefetch_weights). Token t's chain 0 is zmm(2t),
// zeroed by the shared decode loop.
#include <cstddef>

#include "jit/decode_generator.hpp"
#include "jit/f32_decode_kernel.hpp"
#include "sparse/f32_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) arg(offsetof(F32DecodeArgs, field))

class F32DecodeAvx512Generator : public DecodeGenerator<F32DecodeArgs> {
 public:
  explicit F32DecodeAvx512Generator(const F32DecodeKey& key) : key_(key) {
    generate_decode_loop(key.tokens, key.operand != Operand::none,
                         sparse::kF32DecodeRows * sizeof(float), [&] {
                           if (key.two_of_four)
                             accumulate_2of4();
                           else
                             accumulate();
                           finish();
                         });
    finalize(features_of(Isa::avx512));
  }

 private:
  static constexpr int kChains = 4;
  static Zmm acc(int token) { return Zmm(2 * token); }
  static Zmm chain(int token, int c) { return c == 0 ? acc(token) : Zmm(8 + 4 * token + c - 1); }
  int entry_bytes() const { return key_.bf16 ? 36 : 68; }
  void accumulate();
  void accumulate_2of4();
  void finish();

  const F32DecodeKey key_;
};

void F32DecodeAvx512Generator::accumulate() {
  group_entries(entry_bytes());
  for (int c = 1; c < kChains; ++c)
    for (int t = 0; t < key_.tokens; ++t) vpxord(chain(t, c), chain(t, c), chain(t, c));
  const Zmm w = zmm28, xb = zmm29;
  auto entry = [&](int at, int c) {
    mov(eax, dword[entry_ + at]);
    if (key_.bf16) {
      vpmovzxwd(w, ptr[entry_ + at + 4]);
      vpslld(w, w, 16);
    }
    for (int t = 0; t < key_.tokens; ++t) {
      vbroadcastss(xb, dword[x_[t] + rax * 4]);
      if (key_.bf16)
        vfmadd231ps(chain(t, c), w, xb);
      else
        vfmadd231ps(chain(t, c), xb, ptr[entry_ + at + 4]);
    }
  };
  const int bytes = entry_bytes(), round = kChains * bytes;
  Label unrolled, single, one, end;
  mov(r12, count_);
  shr(r12, 2);
  jz(single, T_NEAR);
  L(unrolled);
  prefetch_weights(key_.prefetch, round);
  for (int c = 0; c < kChains; ++c) entry(c * bytes, c);
  add(entry_, round);
  dec(r12);
  jnz(unrolled, T_NEAR);
  L(single);
  and_(count_, kChains - 1);
  jz(end, T_NEAR);
  L(one);
  entry(0, 0);
  add(entry_, bytes);
  dec(count_);
  jnz(one, T_NEAR);
  L(end);
  for (int t = 0; t < key_.tokens; ++t) {
    vaddps(chain(t, 0), chain(t, 0), chain(t, 1));
    vaddps(chain(t, 2), chain(t, 2), chain(t, 3));
    vaddps(acc(t), chain(t, 0), chain(t, 2));
  }
}

// 2:4 (sparse/f32_decode_pack.hpp): per block of 4 columns, the 16 position bytes become two
// vpermps index vectors (kept value 0 and 1 of each row); per token the block's 4 activations,
// broadcast to every 128-bit lane, are permuted into each row's two columns and multiplied by the
// two weight vectors (two chains per token: zmm(2t), zmm(2t + 1)).
void F32DecodeAvx512Generator::accumulate_2of4() {
  const int value_bytes = key_.bf16 ? 2 : 4, bytes = 2 * 16 * value_bytes + 16;
  group_entries(bytes);
  const Zmm idx0 = zmm16, idx1 = zmm17, three = zmm18, w0 = zmm19, w1 = zmm20, xq = zmm21,
            p0 = zmm22, p1 = zmm23;
  mov(eax, 3);
  vpbroadcastd(three, eax);
  xor_(ebx, ebx);  // the block's byte offset in the activations (16 per block)
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    prefetch_weights(key_.prefetch, bytes);
    vpmovzxbd(idx0, ptr[entry_ + 32 * value_bytes]);
    vpsrld(idx1, idx0, 2);
    vpandd(idx0, idx0, three);
    vpandd(idx1, idx1, three);
    if (key_.bf16) {
      vpmovzxwd(w0, ptr[entry_]);
      vpslld(w0, w0, 16);
      vpmovzxwd(w1, ptr[entry_ + 32]);
      vpslld(w1, w1, 16);
    }
    for (int t = 0; t < key_.tokens; ++t) {
      vbroadcastf32x4(xq, ptr[x_[t] + rbx]);
      vpermps(p0, idx0, xq);
      vpermps(p1, idx1, xq);
      if (key_.bf16) {
        vfmadd231ps(Zmm(2 * t), p0, w0);
        vfmadd231ps(Zmm(2 * t + 1), p1, w1);
      } else {
        vfmadd231ps(Zmm(2 * t), p0, ptr[entry_]);
        vfmadd231ps(Zmm(2 * t + 1), p1, ptr[entry_ + 64]);
      }
    }
    add(entry_, bytes);
    add(rbx, 16);
    dec(count_);
    jnz(loop, T_NEAR);
  }
  L(end);
  for (int t = 0; t < key_.tokens; ++t) vaddps(acc(t), Zmm(2 * t), Zmm(2 * t + 1));
}

void F32DecodeAvx512Generator::finish() {
  const Zmm b = zmm16, t0 = zmm17, t1 = zmm18, t2 = zmm19;
  const PostOpList post_ops = key_.post_ops();
  group_row_offset(rbx);  // the group's biases
  add(rbx, ARG(bias));
  vmovups(b, ptr[rbx]);
  mov(rax, y_);
  if (post_ops.has(PostOpKind::binary)) mov(rdx, res_);
  PostOpSources<Zmm> sources;
  sources.bias = [&](int) { return b; };
  sources.tensor = [&](int) { return ptr[rdx]; };
  sources.destination = [&](int) { return ptr[rax]; };
  for (int t = 0; t < key_.tokens; ++t) {
    epilogue_.apply(post_ops, EpilogueEmitter::Lane<Zmm>{acc(t), t0, t1, t2}, sources);
    add(rax, y_stride_);
    if (post_ops.has(PostOpKind::binary)) add(rdx, res_stride_);
  }
}

#undef ARG

class Avx512F32Decode final : public F32DecodeKernel {
 public:
  explicit Avx512F32Decode(const F32DecodeKey& key) : F32DecodeKernel(key), code_(key) {}
  void run(const F32DecodeArgs& args) const override { code_.run(&args); }

 private:
  F32DecodeAvx512Generator code_;
};

}  // namespace

std::unique_ptr<F32DecodeKernel> make_f32_decode_avx512(const F32DecodeKey& key) {
  return std::make_unique<Avx512F32Decode>(key);
}

}  // namespace sparq::jit
