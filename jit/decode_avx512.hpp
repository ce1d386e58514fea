// What the AVX-512 decode generators (int8 16x1, int8 2:4) share: token t's 16 rows in zmm(2t)
// (with zmm(2t + 1) a second accumulator chain, both zeroed by the shared decode loop), and the
// epilogue of a group: compensation (u8 activations), dequantize, bias, activation, residual, and
// the store of 16 fp32 or int8 outputs per token.
#pragma once

#include <cstddef>

#include "jit/decode_generator.hpp"
#include "jit/int8_decode_kernel.hpp"

namespace sparq::jit {

template <typename Args>
class DecodeAvx512Generator : public DecodeGenerator<Args> {
 protected:
  using Base = DecodeGenerator<Args>;
  static Xbyak::Zmm acc(int token) { return Xbyak::Zmm(2 * token); }

  // zmm(2t) = act(float(zmm(2t) [- compensation]) * x_scale[t] * w_scale + bias) [+ residual],
  // stored to y's token t. Clobbers zmm16..24, rax, rbx, rcx, rdx, r12.
  void finish(const DecodeKernelKey& key) {
    using namespace Xbyak;
    auto& g = *this;
    const Zmm xs = g.zmm16, ws = g.zmm17, b = g.zmm18, t0 = g.zmm19, t1 = g.zmm20, t2 = g.zmm21;
    const Zmm inv = g.zmm22, qmax = g.zmm23, qmin = g.zmm24, comp = g.zmm25;
    Base::group_row_offset(g.rax);
    g.mov(g.rbx, Base::arg(offsetof(Args, w_scale)));
    g.vmovups(ws, g.ptr[g.rbx + g.rax]);
    g.mov(g.rbx, Base::arg(offsetof(Args, bias)));
    g.vmovups(b, g.ptr[g.rbx + g.rax]);
    constexpr bool compensated = requires(Args a) { a.compensation; };
    if constexpr (compensated) {
      g.mov(g.rbx, Base::arg(offsetof(Args, compensation)));
      g.vmovdqu32(comp, g.ptr[g.rbx + g.rax]);
    }
    g.mov(g.rax, Base::arg(offsetof(Args, x_scale)));
    if (key.int8_output) {
      g.vbroadcastss(inv, Base::arg(offsetof(Args, inv_y_scale)));
      g.vmovups(qmax, Base::epilogue_.constant(EpilogueEmitter::kQuantMax));
      g.vmovups(qmin, Base::epilogue_.constant(EpilogueEmitter::kQuantMin));
    }
    // rcx walks y's tokens, rdx residual's (the entry registers are free now).
    g.mov(g.rcx, Base::y_);
    if (key.operand != Operand::none) g.mov(g.rdx, Base::res_);
    for (int t = 0; t < key.tokens; ++t) {
      const Zmm v = acc(t);
      if constexpr (compensated) g.vpsubd(v, v, comp);
      g.vbroadcastss(xs, g.dword[g.rax + 4 * t]);
      g.vcvtdq2ps(v, v);
      g.vmulps(v, v, xs);
      g.vfmadd132ps(v, b, ws);  // v = v * w_scale + bias
      Base::epilogue_.activation(key.activation, v, t0, t1, t2);
      Base::epilogue_.combine(key.operand, v, g.ptr[g.rdx]);
      if (key.int8_output) {
        Base::epilogue_.requantize(v, inv, qmax, qmin);
        g.vpmovsdb(g.ptr[g.rcx], v);
      } else {
        g.vmovups(g.ptr[g.rcx], v);
      }
      g.add(g.rcx, Base::y_stride_);
      if (key.operand != Operand::none) g.add(g.rdx, Base::res_stride_);
    }
  }
};

}  // namespace sparq::jit
