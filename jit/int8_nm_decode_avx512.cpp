// AVX-512 VNNI int8 2:4 decode kernel (see int8_nm_decode_kernel.hpp). Per entry:
//   vpmovzxbd   the 16 position bytes p -> one per row dword;
//   u = p | p << 12, v = u | u << 6: the row's fields a0, a1, b0, b1 land in bits 0-1 of its
//               dword's bytes 0..3 (ORs of non-overlapping copies, no carries);
//   vpternlogd  (v & 0x03) | (0, 0, 4, 4): vpshufb indices into the window's 8 activations;
//   per token:  vpbroadcastq the window's 8 activations, vpshufb, vpdpbusd with the 64 weights.
// Entries alternate between two accumulator chains per token (vpdpbusd latency).
#include <cstddef>

#include "jit/decode_avx512.hpp"
#include "jit/int8_nm_decode_kernel.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "sparse/int8_nm_decode_pack.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class NmDecodeAvx512Generator : public DecodeAvx512Generator<NmDecodeArgs> {
 public:
  explicit NmDecodeAvx512Generator(const DecodeKernelKey& key) : key_(key) {
    generate_decode_loop(key.tokens, key.operand != Operand::none,
                         sparse::kNmDecodeRows * (key.int8_output ? 1 : 4), [&] {
                           accumulate();
                           finish(key_);
                         });
    finalize(features_of(Isa::avx512_vnni));
  }

 private:
  static Zmm chain(int token, int c) { return Zmm(2 * token + c); }
  void accumulate();

  const DecodeKernelKey key_;
};

void NmDecodeAvx512Generator::accumulate() {
  constexpr int kEntry = sparse::kNmDecodeEntryBytes;
  const Zmm shifted = zmm26, low2 = zmm27, upper = zmm28, idx = zmm29, xq = zmm30, picked = zmm31;
  mov(eax, 0x03030303);
  vpbroadcastd(low2, eax);
  mov(eax, 0x04040000);
  vpbroadcastd(upper, eax);
  group_entries(kEntry);
  xor_(ebx, ebx);  // rbx: the window's byte offset in the activations
  auto entry = [&](int at, int c) {
    vpmovzxbd(idx, ptr[entry_ + at + 64]);
    vpslld(shifted, idx, 12);
    vpord(idx, idx, shifted);
    vpslld(shifted, idx, 6);
    vpord(idx, idx, shifted);
    vpternlogd(idx, low2, upper, 0xea);  // (idx & low2) | upper
    for (int t = 0; t < key_.tokens; ++t) {
      vpbroadcastq(xq, ptr[x_[t] + rbx + (at / kEntry) * sparse::kNmDecodeWindow]);
      vpshufb(picked, xq, idx);
      vpdpbusd(chain(t, c), picked, ptr[entry_ + at]);
    }
  };
  Label pairs, single, end;
  mov(r12, count_);
  shr(r12, 1);
  jz(single, T_NEAR);
  L(pairs);
  // Three lines cover a round's 160 bytes (Zen 5, 4 tokens, cold weights: 12.9 GB/s without,
  // where the loop alone runs at 40 GB/s and memory at ~30).
  prefetch_weights(key_.prefetch, 3 * 64);
  entry(0, 0);
  entry(kEntry, 1);
  add(entry_, 2 * kEntry);
  add(rbx, 2 * sparse::kNmDecodeWindow);
  dec(r12);
  jnz(pairs, T_NEAR);
  L(single);
  test(count_, 1);
  jz(end, T_NEAR);
  entry(0, 0);
  L(end);
  for (int t = 0; t < key_.tokens; ++t) vpaddd(acc(t), chain(t, 0), chain(t, 1));
}

class Avx512NmDecodeKernel final : public Int8NmDecodeKernel {
 public:
  explicit Avx512NmDecodeKernel(const DecodeKernelKey& key) : Int8NmDecodeKernel(key), code_(key) {}
  void run(const NmDecodeArgs& args) const override { code_.run(&args); }

 private:
  NmDecodeAvx512Generator code_;
};

}  // namespace

std::unique_ptr<Int8NmDecodeKernel> make_int8_nm_decode_avx512_vnni(const DecodeKernelKey& key) {
  return std::make_unique<Avx512NmDecodeKernel>(key);
}

std::shared_ptr<const Int8NmDecodeKernel> int8_nm_decode_kernel(const DecodeKernelKey& key) {
  if (key.isa != Isa::avx512_vnni || !can_run(key.isa))
    throw NotSupported(std::string("int8 2:4 decode kernel for ") + isa_name(key.isa) +
                       " requested; it needs avx512_vnni (best here: " + isa_name(best_int8_isa()) +
                       ")");
  if (key.tokens < 1 || key.tokens > sparse::kDecodeMaxTokens)
    throw InvalidArgument("int8 2:4 decode kernel: tokens must be 1.." +
                          std::to_string(sparse::kDecodeMaxTokens) + ", got " +
                          std::to_string(key.tokens));
  static KernelCache<DecodeKernelKey, Int8NmDecodeKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<Int8NmDecodeKernel> {
    try {
      return make_int8_nm_decode_avx512_vnni(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the int8 2:4 decode kernel failed: ") + e.what());
    }
  });
}

}  // namespace sparq::jit
