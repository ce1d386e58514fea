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

  // The key's post-ops on every token: zmm(2t) = act(float(zmm(2t) [- compensation]) *
  // x_scale[t] * w_scale + bias) [+ residual], stored to y's token t. Clobbers zmm17..25, rax,
  // rbx, rcx, rdx.
  void finish(const DecodeKernelKey& key) {
    using namespace Xbyak;
    auto& g = *this;
    const Zmm ws = g.zmm17, b = g.zmm18, t0 = g.zmm19, t1 = g.zmm20, t2 = g.zmm21;
    const Zmm inv = g.zmm22, qmax = g.zmm23, qmin = g.zmm24, comp = g.zmm25;
    const PostOpList post_ops = key.post_ops();
    Base::group_row_offset(g.rax);
    g.mov(g.rbx, Base::arg(offsetof(Args, w_scale)));
    g.vmovups(ws, g.ptr[g.rbx + g.rax]);
    g.mov(g.rbx, Base::arg(offsetof(Args, bias)));
    g.vmovups(b, g.ptr[g.rbx + g.rax]);
    PostOpSources<Zmm> sources;
    constexpr bool compensated = requires(Args a) { a.compensation; };
    if constexpr (compensated) {
      g.mov(g.rbx, Base::arg(offsetof(Args, compensation)));
      g.vmovdqu32(comp, g.ptr[g.rbx + g.rax]);
      sources.compensation = [&](int) { return comp; };
    }
    g.mov(g.rax, Base::arg(offsetof(Args, x_scale)));
    if (post_ops.output() == TileOutput::s8) {
      g.vbroadcastss(inv, Base::arg(offsetof(Args, inv_y_scale)));
      g.vmovups(qmax, Base::epilogue_.constant(EpilogueEmitter::kQuantMax));
      g.vmovups(qmin, Base::epilogue_.constant(EpilogueEmitter::kQuantMin));
      sources.inv_y_scale = inv;
      sources.quant_max = qmax;
      sources.quant_min = qmin;
    }
    // rcx walks y's tokens, rdx residual's (the entry registers are free now).
    g.mov(g.rcx, Base::y_);
    if (post_ops.has(PostOpKind::binary)) g.mov(g.rdx, Base::res_);
    int token = 0;
    sources.x_scale = [&](int) { return g.ptr_b[g.rax + 4 * token]; };
    sources.w_scale = [&](int) { return ws; };
    sources.bias = [&](int) { return b; };
    sources.tensor = [&](int) { return g.ptr[g.rdx]; };
    sources.destination = [&](int) { return g.ptr[g.rcx]; };
    for (token = 0; token < key.tokens; ++token) {
      Base::epilogue_.apply(post_ops, EpilogueEmitter::Lane<Zmm>{acc(token), t0, t1, t2}, sources);
      g.add(g.rcx, Base::y_stride_);
      if (post_ops.has(PostOpKind::binary)) g.add(g.rdx, Base::res_stride_);
    }
  }
};

}  // namespace sparq::jit
