#include "jit/epilogue_emitter.hpp"

#include <bit>
#include <cstdint>
#include <type_traits>

namespace sparq::jit {

Xbyak::Address EpilogueEmitter::constant(Const c) const {
  return gen_.ptr[gen_.rip + table_ + 64 * static_cast<int>(c)];
}

template <typename Vmm>
void EpilogueEmitter::exp(const Vmm& x, const Vmm& n, const Vmm& p) {
  auto& g = gen_;
  // exp(x) = 2^k * e^r with k = round(x * log2 e), r = x - k ln 2 (|r| <= ln2 / 2).
  g.vminps(x, x, constant(kExpMax));
  g.vmaxps(x, x, constant(kExpMin));
  g.vmulps(n, x, constant(kLog2e));
  g.vcvtps2dq(n, n);
  g.vcvtdq2ps(p, n);
  g.vfnmadd231ps(x, p, constant(kLn2Hi));
  g.vfnmadd231ps(x, p, constant(kLn2Lo));
  // Taylor polynomial of degree 6 in r (Horner).
  g.vmovups(p, constant(kC6));
  g.vfmadd213ps(p, x, constant(kC5));
  g.vfmadd213ps(p, x, constant(kC4));
  g.vfmadd213ps(p, x, constant(kC3));
  g.vfmadd213ps(p, x, constant(kC2));
  g.vfmadd213ps(p, x, constant(kOne));
  g.vfmadd213ps(p, x, constant(kOne));
  // 2^k built in the exponent field.
  g.vpaddd(n, n, constant(kExpBias));
  g.vpslld(n, n, 23);
  g.vmulps(x, p, n);
}

template <typename Vmm>
void EpilogueEmitter::activation(Activation act, const Vmm& x, const Vmm& t0, const Vmm& t1,
                                 const Vmm& t2) {
  auto& g = gen_;
  switch (act) {
    case Activation::none:
      return;
    case Activation::relu:
      if constexpr (std::is_same_v<Vmm, Xbyak::Zmm>)
        g.vpxord(t0, t0, t0);  // vxorps on zmm would need AVX512DQ
      else
        g.vpxor(t0, t0, t0);
      g.vmaxps(x, x, t0);
      return;
    case Activation::gelu_tanh:
      // gelu(x) = 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
      g.vmulps(t0, x, x);
      g.vmovups(t1, constant(kGeluA));
      g.vfmadd231ps(t1, t0, constant(kGeluB));  // -2 sqrt(2/pi) (1 + 0.044715 x^2)
      g.vmulps(t1, t1, x);                      // -2u
      exp(t1, t0, t2);
      g.vaddps(t1, t1, constant(kOne));
      g.vdivps(x, x, t1);
      return;
    case Activation::silu:
      // x / (1 + exp(-x)); exp clamps its argument, so large |x| give x or -0.
      if constexpr (std::is_same_v<Vmm, Xbyak::Zmm>)
        g.vpxord(t1, t1, t1);
      else
        g.vpxor(t1, t1, t1);
      g.vsubps(t1, t1, x);
      exp(t1, t0, t2);
      g.vaddps(t1, t1, constant(kOne));
      g.vdivps(x, x, t1);
      return;
    case Activation::gelu_erf: {
      // With q = 0.5 P(t) exp(-x^2 / 2), t = 1 / (1 + p |x| / sqrt 2) (erf(z) = 1 - P(t) e^-z^2,
      // |error| < 1.5e-7): gelu(x) = x - x q for x >= 0, x q for x < 0.
      g.vmulps(t0, x, x);
      g.vmulps(t0, t0, constant(kMinusHalf));
      exp(t0, t1, t2);  // t0 = exp(-x^2 / 2)
      if constexpr (std::is_same_v<Vmm, Xbyak::Zmm>)
        g.vpandd(t1, x, constant(kAbsMask));  // vandps on zmm would need AVX512DQ
      else
        g.vandps(t1, x, constant(kAbsMask));
      g.vmulps(t1, t1, constant(kErfP));
      g.vaddps(t1, t1, constant(kOne));
      g.vmovups(t2, constant(kOne));
      g.vdivps(t1, t2, t1);  // t
      g.vmovups(t2, constant(kErfA5));
      g.vfmadd213ps(t2, t1, constant(kErfA4));
      g.vfmadd213ps(t2, t1, constant(kErfA3));
      g.vfmadd213ps(t2, t1, constant(kErfA2));
      g.vfmadd213ps(t2, t1, constant(kErfA1));
      g.vmulps(t2, t2, t1);  // P(t)
      g.vmulps(t0, t0, t2);
      g.vmulps(t0, t0, constant(kC2));  // q (kC2 = 1/2)
      g.vmulps(t1, x, t0);              // x q
      g.vsubps(t2, x, t1);              // x - x q
      if constexpr (std::is_same_v<Vmm, Xbyak::Zmm>) {
        g.vpxord(t0, t0, t0);
        g.vcmpps(g.k1, x, t0, 1);  // x < 0 (_CMP_LT_OS)
        g.vblendmps(x | g.k1, t2, t1);
      } else {
        g.vblendvps(x, t2, t1, x);  // the sign of x picks x q
      }
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

}  // namespace sparq::jit
