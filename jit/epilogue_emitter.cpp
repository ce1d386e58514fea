#include "jit/epilogue_emitter.hpp"

#include <bit>
#include <cstdint>
#include <type_traits>

#include "sparq/error.hpp"

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
      // gelu(x) = x/2 (1 + erf(x / sqrt 2)), erf from a rational function of the clamped x:
      // no exp and no table, a chain of ~17 dependent steps. t0 = clamped x, t1 = its square.
      each([&](const L& l) { g.vminps(l.t0, l.x, constant(kErfClampHi)); });
      each([&](const L& l) { g.vmaxps(l.t0, l.t0, constant(kErfClampLo)); });
      each([&](const L& l) { g.vmulps(l.t1, l.t0, l.t0); });
      each([&](const L& l) { g.vmovups(l.t2, constant(kErfP6)); });
      for (Const c : {kErfP5, kErfP4, kErfP3, kErfP2, kErfP1, kErfP0})
        each([&](const L& l) { g.vfmadd213ps(l.t2, l.t1, constant(c)); });
      each([&](const L& l) { g.vmulps(l.t2, l.t2, l.t0); });  // x P(x^2)
      each([&](const L& l) { g.vmovups(l.t0, constant(kErfQ4)); });
      for (Const c : {kErfQ3, kErfQ2, kErfQ1, kOne})
        each([&](const L& l) { g.vfmadd213ps(l.t0, l.t1, constant(c)); });
      each([&](const L& l) { g.vdivps(l.t2, l.t2, l.t0); });         // erf(x / sqrt 2)
      each([&](const L& l) { g.vmulps(l.x, l.x, constant(kC2)); });  // x / 2 (kC2 = 1/2)
      each([&](const L& l) { g.vfmadd231ps(l.x, l.t2, l.x); });      // x/2 erf + x/2
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
      std::bit_cast<uint32_t>(5.65685415f),
      std::bit_cast<uint32_t>(-5.65685415f),
      std::bit_cast<uint32_t>(0.797884524f),
      std::bit_cast<uint32_t>(0.0707272813f),
      std::bit_cast<uint32_t>(0.00894057751f),
      std::bit_cast<uint32_t>(0.000327036047f),
      std::bit_cast<uint32_t>(6.24327413e-06f),
      std::bit_cast<uint32_t>(-4.29171045e-08f),
      std::bit_cast<uint32_t>(2.17345961e-10f),
      std::bit_cast<uint32_t>(0.255309403f),
      std::bit_cast<uint32_t>(0.0287590045f),
      std::bit_cast<uint32_t>(0.00179429562f),
      std::bit_cast<uint32_t>(5.96224891e-05f),
      1u,
      0x7fffu,
      0x40u,
  };
  gen_.align(64);
  gen_.L(table_);
  for (uint32_t v : values)
    for (int lane = 0; lane < 16; ++lane) gen_.dd(v);
}

// t = the bf16 bits of v rounded to nearest even, in the low half of each lane (NaN not handled).
template <typename Vmm>
void EpilogueEmitter::round_bits_to_bf16(const Vmm& t, const Vmm& v) {
  auto& g = gen_;
  g.vpsrld(t, v, 16);
  if constexpr (std::is_same_v<Vmm, Xbyak::Zmm>)
    g.vpandd(t, t, constant(kOneBit));
  else
    g.vpand(t, t, constant(kOneBit));
  g.vpaddd(t, t, constant(kBf16Round));
  g.vpaddd(t, t, v);
  g.vpsrld(t, t, 16);
}

void EpilogueEmitter::round_to_bf16(const Xbyak::Zmm& t, const Xbyak::Zmm& v,
                                    const Xbyak::Opmask& nan) {
  auto& g = gen_;
  round_bits_to_bf16(t, v);
  g.vcmpps(nan, v, v, 3);  // unordered: NaN
  g.vpsrld(t | nan, v, 16);
  g.vpord(t | nan, t, constant(kBf16QuietBit));
}

void EpilogueEmitter::round_to_bf16(const Xbyak::Ymm& t, const Xbyak::Ymm& v,
                                    const Xbyak::Ymm& scratch) {
  auto& g = gen_;
  round_bits_to_bf16(t, v);
  // NaN lanes: (bits >> 16) | 0x40, blended in by the unordered mask (made in v).
  g.vpsrld(scratch, v, 16);
  g.vpor(scratch, scratch, constant(kBf16QuietBit));
  g.vcmpps(v, v, v, 3);
  g.vblendvps(t, t, scratch, v);
}

template <typename Vmm>
void EpilogueEmitter::apply(const PostOpList& list, std::span<const Lane<Vmm>> lanes,
                            const PostOpSources<Vmm>& src) {
  auto& g = gen_;
  const std::span<const PostOp> ops = list.ops();
  const int n = static_cast<int>(lanes.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    switch (ops[i].kind) {
      case PostOpKind::dequantize: {
        const bool bias_next = i + 1 < ops.size() && ops[i + 1].kind == PostOpKind::bias;
        for (int l = 0; l < n; ++l) {
          const Vmm& v = lanes[l].x;
          if (src.compensation) g.vpsubd(v, v, src.compensation(l).operand());
          g.vcvtdq2ps(v, v);
          g.vmulps(v, v, src.x_scale(l).operand());
          if (!bias_next) {
            g.vmulps(v, v, src.w_scale(l).operand());
            continue;
          }
          const PostOpSource<Vmm> b = src.bias(l);
          Vmm bias_reg = lanes[l].t0;
          if (b.reg())
            bias_reg = *b.reg();
          else
            g.vmovups(bias_reg, b.operand());
          g.vfmadd132ps(v, bias_reg, src.w_scale(l).operand());  // v = v * w_scale + bias
        }
        if (bias_next) ++i;
        break;
      }
      case PostOpKind::bias:
        for (int l = 0; l < n; ++l) g.vaddps(lanes[l].x, lanes[l].x, src.bias(l).operand());
        break;
      case PostOpKind::activation:
        activation(ops[i].activation, lanes);
        break;
      case PostOpKind::binary:
        for (int l = 0; l < n; ++l) combine(ops[i].binary, lanes[l].x, src.tensor(l).operand());
        break;
      case PostOpKind::store:
        for (int l = 0; l < n; ++l) store(ops[i].output, lanes[l], l, src);
        break;
    }
  }
}

template <typename Vmm>
void EpilogueEmitter::store(TileOutput output, const Lane<Vmm>& lane, int index,
                            const PostOpSources<Vmm>& src) {
  auto& g = gen_;
  constexpr bool zmm = std::is_same_v<Vmm, Xbyak::Zmm>;
  constexpr bool xmm = std::is_same_v<Vmm, Xbyak::Xmm>;
  const Vmm& v = lane.x;
  const Xbyak::Address dst = src.destination(index);
  const bool masked = src.store_mask.getIdx() != 0;
  if (output == TileOutput::s8) {
    // (Not a conditional expression: one of an Address and an Operand& would slice the Address.)
    const PostOpSource<Vmm> qmax =
        src.quant_max ? *src.quant_max : PostOpSource<Vmm>(constant(kQuantMax));
    const PostOpSource<Vmm> qmin =
        src.quant_min ? *src.quant_min : PostOpSource<Vmm>(constant(kQuantMin));
    requantize(v, src.inv_y_scale.value().operand(), qmax.operand(), qmin.operand());
  }
  if constexpr (zmm) {
    switch (output) {
      case TileOutput::f32:
        g.vmovups(masked ? dst | src.store_mask : dst, v);
        return;
      case TileOutput::s8:
        g.vpmovsdb(masked ? dst | src.store_mask : dst, v);
        return;
      case TileOutput::bf16:
        round_to_bf16(lane.t0, v, src.nan_mask);
        g.vpmovdw(masked ? dst | src.store_mask : dst, lane.t0);
        return;
    }
  } else if constexpr (xmm) {
    switch (output) {
      case TileOutput::f32:
        g.vmovups(dst, v);
        return;
      case TileOutput::s8:
        g.vpackssdw(v, v, v);
        g.vpacksswb(v, v, v);
        g.vmovd(dst, v);
        return;
      case TileOutput::bf16:
        break;
    }
    throw NotSupported("a bf16 store of xmm lanes is not generated");
  } else {
    const Xbyak::Xmm lo(v.getIdx()), hi(lane.t1.getIdx());
    switch (output) {
      case TileOutput::f32:
        g.vmovups(dst, v);
        return;
      case TileOutput::s8:
        // v holds the rounded, clamped values as dwords.
        g.vextracti128(hi, v, 1);
        g.vpackssdw(lo, lo, hi);
        g.vpacksswb(lo, lo, lo);
        g.vmovq(dst, lo);
        return;
      case TileOutput::bf16: {
        round_to_bf16(lane.t0, v, lane.t1);
        const Xbyak::Xmm t(lane.t0.getIdx());
        g.vextracti128(hi, lane.t0, 1);
        g.vpackusdw(t, t, hi);
        g.vmovdqu(dst, t);
        return;
      }
    }
  }
}

template void EpilogueEmitter::apply<Xbyak::Xmm>(const PostOpList&,
                                                 std::span<const Lane<Xbyak::Xmm>>,
                                                 const PostOpSources<Xbyak::Xmm>&);
template void EpilogueEmitter::apply<Xbyak::Ymm>(const PostOpList&,
                                                 std::span<const Lane<Xbyak::Ymm>>,
                                                 const PostOpSources<Xbyak::Ymm>&);
template void EpilogueEmitter::apply<Xbyak::Zmm>(const PostOpList&,
                                                 std::span<const Lane<Xbyak::Zmm>>,
                                                 const PostOpSources<Xbyak::Zmm>&);

}  // namespace sparq::jit
