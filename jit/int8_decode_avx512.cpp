// AVX-512 VNNI variant of the int8 decode kernel (sparse/int8_decode_pack.hpp), 1..4 tokens.
//
// Per entry (a pair of columns c0, c1 of one 16-row group):
//   1 vpmovsxbw: the 32 interleaved weight bytes -> 16 dwords (w[r][c0], w[r][c1]) in one zmm;
//   per token: vpbroadcastw x[c0], vpbroadcastw x[c1], vpunpcklwd -> (x[c0], x[c1]) in every
//   dword, then one vpdpwssd into the token's accumulator (16 rows).
// Exact (s16 products summed in int32), half the vector ops of the AVX2 variant per entry, so
// that the loop keeps up with memory. Token t's accumulator is zmm(2t): the shared decode loop
// zeroes ymm(2t), which clears the whole zmm.
#include <cstddef>

#include "jit/decode_avx512.hpp"
#include "jit/int8_decode_kernel.hpp"
#include "sparse/int8_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

#define ARG(field) arg(offsetof(DecodeArgs, field))

class Int8DecodeAvx512Generator : public DecodeAvx512Generator<DecodeArgs> {
 public:
  explicit Int8DecodeAvx512Generator(const DecodeKernelKey& key) : key_(key) {
    generate_decode_loop(key.tokens, key.operand != Operand::none,
                         sparse::kDecodeRows * (key.int8_output ? 1 : 4), [&] {
                           accumulate();
                           finish(key_);
                         });
    finalize(features_of(Isa::avx512_vnni));
  }

 private:
  static constexpr int kChains = 4;
  // Accumulator chain c of a token: chain 0 is acc(token), the others zmm8..zmm27 (summed into
  // acc before the epilogue).
  static Zmm chain(int token, int c) { return c == 0 ? acc(token) : Zmm(8 + 4 * token + c - 1); }
  void accumulate();

  const DecodeKernelKey key_;
};

void Int8DecodeAvx512Generator::accumulate() {
  group_entries(sparse::kDecodeEntryBytes);
  // vpdpwssd's latency (4-5 cycles) would bound one accumulator chain per token to a fraction
  // of the loop's throughput: entries go round-robin to kChains chains, summed at the end.
  for (int c = 1; c < kChains; ++c)
    for (int t = 0; t < key_.tokens; ++t) vpxord(chain(t, c), chain(t, c), chain(t, c));
  const Zmm w = zmm28, xa = zmm29, xb = zmm30, pair = zmm31;
  auto entry = [&](int at, int c) {
    movzx(eax, word[entry_ + at]);
    movzx(ebx, word[entry_ + at + 2]);
    vpmovsxbw(w, ptr[entry_ + at + 4]);
    for (int t = 0; t < key_.tokens; ++t) {
      vpbroadcastw(xa, word[x_[t] + rax * 2]);
      vpbroadcastw(xb, word[x_[t] + rbx * 2]);
      vpunpcklwd(pair, xa, xb);
      vpdpwssd(chain(t, c), w, pair);
    }
  };
  Label unrolled, single, end;
  mov(r12, count_);
  shr(r12, 2);  // r12: rounds of kChains entries; count_ & 3 single entries after them
  jz(single, T_NEAR);
  L(unrolled);
  for (int c = 0; c < kChains; ++c) entry(c * sparse::kDecodeEntryBytes, c);
  // Two lines per round of 144 bytes (on Zen 5, before one-token calls dropped the prefetch,
  // it measured 0.80x -> ~0.9x of oneDNN's GEMV bandwidth).
  prefetch_weights(key_.prefetch, 128);
  add(entry_, kChains * sparse::kDecodeEntryBytes);
  dec(r12);
  jnz(unrolled, T_NEAR);
  L(single);
  and_(count_, kChains - 1);
  jz(end, T_NEAR);
  Label one;
  L(one);
  entry(0, 0);
  add(entry_, sparse::kDecodeEntryBytes);
  dec(count_);
  jnz(one, T_NEAR);
  L(end);
  for (int t = 0; t < key_.tokens; ++t) {
    vpaddd(chain(t, 0), chain(t, 0), chain(t, 1));
    vpaddd(chain(t, 2), chain(t, 2), chain(t, 3));
    vpaddd(acc(t), chain(t, 0), chain(t, 2));
  }
}

#undef ARG

class Avx512DecodeKernel final : public Int8DecodeKernel {
 public:
  explicit Avx512DecodeKernel(const DecodeKernelKey& key) : Int8DecodeKernel(key), code_(key) {}
  void run(const DecodeArgs& args) const override { code_.run(&args); }

 private:
  Int8DecodeAvx512Generator code_;
};

}  // namespace

std::unique_ptr<Int8DecodeKernel> make_int8_decode_avx512_vnni(const DecodeKernelKey& key) {
  return std::make_unique<Avx512DecodeKernel>(key);
}

}  // namespace sparq::jit
