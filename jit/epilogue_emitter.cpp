#include "jit/epilogue_emitter.hpp"

#include <bit>
#include <cstdint>
#include <type_traits>

namespace sparq::jit {

Xbyak::Address EpilogueEmitter::constant(Const c) const {
  return gen_.ptr[gen_.rip + table_ + 64 * static_cast<int>(c)];
}

template <typename Vmm>
void EpilogueEmitter::exp(std::span<const Lane<Vmm>> lanes, Vmm Lane<Vmm>::*xm, Vmm Lane<Vmm>::*nm,
                          Vmm Lane<Vmm>::*pm) {
  auto& g = gen_;
  auto each = [&](auto&& emit) {
    for (const Lane<Vmm>& l : lanes) emit(l.*xm, l.*nm, l.*pm);
  };
  // exp(x) = 2^k * e^r with k = round(x * log2 e), r = x - k ln 2 (|r| <= ln2 / 2).
  each([&](auto& x, auto&, auto&) { g.vminps(x, x, constant(kExpMax)); });
  each([&](auto& x, auto&, auto&) { g.vmaxps(x, x, constant(kExpMin)); });
  each([&](auto& x, auto& n, auto&) { g.vmulps(n, x, constant(kLog2e)); });
  each([&](auto&, auto& n, auto&) { g.vcvtps2dq(n, n); });
  each([&](auto&, auto& n, auto& p) { g.vcvtdq2ps(p, n); });
  each([&](auto& x, auto&, auto& p) { g.vfnmadd231ps(x, p, constant(kLn2Hi)); });
  each([&](auto& x, auto&, auto& p) { g.vfnmadd231ps(x, p, constant(kLn2Lo)); });
  // Taylor polynomial of degree 6 in r (Horner).
  each([&](auto&, auto&, auto& p) { g.vmovups(p, constant(kC6)); });
  for (Const c : {kC5, kC4, kC3, kC2, kOne, kOne})
    each([&](auto& x, auto&, auto& p) { g.vfmadd213ps(p, x, constant(c)); });
  // 2^k built in the exponent field.
  each([&](auto&, auto& n, auto&) { g.vpaddd(n, n, constant(kExpBias)); });
  each([&](auto&, auto& n, auto&) { g.vpslld(n, n, 23); });
  each([&](auto& x, auto& n, auto& p) { g.vmulps(x, p, n); });
}

template <typename Vmm>
void EpilogueEmitter::activation(Activation act, const Vmm& x, const Vmm& t0, const Vmm& t1,
                                 const Vmm& t2) {
  const Lane<Vmm> lane{x, t0, t1, t2};
  activation(act, std::span<const Lane<Vmm>>(&lane, 1));
}

template <typename Vmm>
void EpilogueEmitter::activation(Activation act, std::span<const Lane<Vmm>> lanes) {
  auto& g = gen_;
  using L = Lane<Vmm>;
  auto each = [&](auto&& emit) {
    for (const L& l : lanes) emit(l);
  };
  constexpr bool zmm = std::is_same_v<Vmm, Xbyak::Zmm>;
  auto zero = [&](const Vmm& v) {
    if constexpr (zmm)
      g.vpxord(v, v, v);  // vxorps on zmm would need AVX512DQ
    else
      g.vpxor(v, v, v);
  };
  switch (act) {
    case Activation::none:
      return;
    case Activation::relu:
      each([&](const L& l) {
        zero(l.t0);
        g.vmaxps(l.x, l.x, l.t0);
      });
      return;
    case Activation::gelu_tanh:
      // gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
      each([&](const L& l) { g.vmulps(l.t0, l.x, l.x); });
      each([&](const L& l) { g.vmovups(l.t1, constant(kGeluA)); });
      each([&](const L& l) { g.vfmadd231ps(l.t1, l.t0, constant(kGeluB)); });
      each([&](const L& l) { g.vmulps(l.t1, l.t1, l.x); });  // -2u
      exp(lanes, &L::t1, &L::t0, &L::t2);
      each([&](const L& l) { g.vaddps(l.t1, l.t1, constant(kOne)); });
      each([&](const L& l) { g.vdivps(l.x, l.x, l.t1); });
      return;
    case Activation::silu:
      // x / (1 + exp(-x)); exp clamps its argument, so large |x| give x or -0.
      each([&](const L& l) { zero(l.t1); });
      each([&](const L& l) { g.vsubps(l.t1, l.t1, l.x); });
      exp(lanes, &L::t1, &L::t0, &L::t2);
      each([&](const L& l) { g.vaddps(l.t1, l.t1, constant(kOne)); });
      each([&](const L& l) { g.vdivps(l.x, l.x, l.t1); });
      return;
    case Activation::gelu_erf: {
      // With q = 0.5 P(t) exp(-x^2 / 2), t = 1 / (1 + p |x| / sqrt 2) (erf(z) = 1 - P(t) e^-z^2,
      // |error| < 1.5e-7): gelu(x) = x - x q for x >= 0, x q for x < 0.
      each([&](const L& l) { g.vmulps(l.t0, l.x, l.x); });
      each([&](const L& l) { g.vmulps(l.t0, l.t0, constant(kMinusHalf)); });
      exp(lanes, &L::t0, &L::t1, &L::t2);  // t0 = exp(-x^2 / 2)
      each([&](const L& l) {
        if constexpr (zmm)
          g.vpandd(l.t1, l.x, constant(kAbsMask));  // vandps on zmm would need AVX512DQ
        else
          g.vandps(l.t1, l.x, constant(kAbsMask));
      });
      each([&](const L& l) { g.vmulps(l.t1, l.t1, constant(kErfP)); });
      each([&](const L& l) { g.vaddps(l.t1, l.t1, constant(kOne)); });
      each([&](const L& l) { g.vmovups(l.t2, constant(kOne)); });
      each([&](const L& l) { g.vdivps(l.t1, l.t2, l.t1); });  // t
      each([&](const L& l) { g.vmovups(l.t2, constant(kErfA5)); });
      for (Const c : {kErfA4, kErfA3, kErfA2, kErfA1})
        each([&](const L& l) { g.vfmadd213ps(l.t2, l.t1, constant(c)); });
      each([&](const L& l) { g.vmulps(l.t2, l.t2, l.t1); });  // P(t)
      each([&](const L& l) { g.vmulps(l.t0, l.t0, l.t2); });
      each([&](const L& l) { g.vmulps(l.t0, l.t0, constant(kC2)); });  // q (kC2 = 1/2)
      each([&](const L& l) { g.vmulps(l.t1, l.x, l.t0); });            // x q
      each([&](const L& l) { g.vsubps(l.t2, l.x, l.t1); });            // x - x q
      each([&](const L& l) {
        if constexpr (zmm) {
          g.vpxord(l.t0, l.t0, l.t0);
          g.vcmpps(g.k1, l.x, l.t0, 1);  // x < 0 (_CMP_LT_OS)
          g.vblendmps(l.x | g.k1, l.t2, l.t1);
        } else {
          g.vblendvps(l.x, l.t2, l.t1, l.x);  // the sign of x picks x q
        }
      });
      return;
    }
  }
}

void EpilogueEmitter::emit_table() {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const uint32_t values[kConstCount] = {
      std::bit_cast<uint32_t>(1.0f),
      std::bit_cast<uint32_t>(87.0f),
      std::bit_cast<uint32_t>(-87.0f),
      std::bit_cast<uint32_t>(1.44269504088896341f),
      std::bit_cast<uint32_t>(0.693359375f),     // ln 2, high part (exact in few bits)
      std::bit_cast<uint32_t>(-2.12194440e-4f),  // ln 2 - high part
      std::bit_cast<uint32_t>(1.0f / 2),
      std::bit_cast<uint32_t>(1.0f / 6),
      std::bit_cast<uint32_t>(1.0f / 24),
      std::bit_cast<uint32_t>(1.0f / 120),
      std::bit_cast<uint32_t>(1.0f / 720),
      std::bit_cast<uint32_t>(-2.0f * kSqrt2OverPi),
      std::bit_cast<uint32_t>(-2.0f * kSqrt2OverPi * 0.044715f),
      127u,
      std::bit_cast<uint32_t>(127.0f),
      std::bit_cast<uint32_t>(-128.0f),
      0x7fffffffu,
      std::bit_cast<uint32_t>(-0.5f),
      std::bit_cast<uint32_t>(0.3275911f * 0.7071067811865476f),
      std::bit_cast<uint32_t>(0.254829592f),
      std::bit_cast<uint32_t>(-0.284496736f),
      std::bit_cast<uint32_t>(1.421413741f),
      std::bit_cast<uint32_t>(-1.453152027f),
      std::bit_cast<uint32_t>(1.061405429f),
  };
  gen_.align(64);
  gen_.L(table_);
  for (uint32_t v : values)
    for (int lane = 0; lane < 16; ++lane) gen_.dd(v);
}

template void EpilogueEmitter::activation<Xbyak::Ymm>(Activation, const Xbyak::Ymm&,
                                                      const Xbyak::Ymm&, const Xbyak::Ymm&,
                                                      const Xbyak::Ymm&);
template void EpilogueEmitter::activation<Xbyak::Zmm>(Activation, const Xbyak::Zmm&,
                                                      const Xbyak::Zmm&, const Xbyak::Zmm&,
                                                      const Xbyak::Zmm&);
template void EpilogueEmitter::activation<Xbyak::Ymm>(Activation,
                                                      std::span<const Lane<Xbyak::Ymm>>);
template void EpilogueEmitter::activation<Xbyak::Zmm>(Activation,
                                                      std::span<const Lane<Xbyak::Zmm>>);

}  // namespace sparq::jit
