#include "jit/block_tile_avx2.hpp"

#include <cstddef>

namespace sparq::jit {

using namespace Xbyak;

void Avx2TileGenerator::store_half(int half, Operand operand, bool int8_output) {
  const bool residual = operand != Operand::none;
  // 4x4 transposes inside each 128-bit lane: out j holds token (4 half + j) in its low lane and
  // token (8 + 4 half + j) in its high lane.
  const Ymm r0 = acc(0, half), r1 = acc(1, half), r2 = acc(2, half), r3 = acc(3, half);
  const Ymm u0 = ymm10, u1 = ymm11, u2 = ymm12, u3 = ymm13;
  vunpcklps(u0, r0, r1);
  vunpckhps(u1, r0, r1);
  vunpcklps(u2, r2, r3);
  vunpckhps(u3, r2, r3);
  vshufps(r0, u0, u2, 0x44);
  vshufps(r1, u0, u2, 0xee);
  vshufps(r2, u1, u3, 0x44);
  vshufps(r3, u1, u3, 0xee);

  // Base pointers of the low-lane tokens (4 half) and the high-lane tokens (8 + 4 half).
  const Reg64 y_lo = r8, y_hi = rax, res_lo = rdx, res_hi = rcx;
  if (half == 0) {
    mov(y_lo, y_);
    lea(y_hi, ptr[y_ + y_stride_ * 8]);
  } else {
    lea(y_lo, ptr[y_ + y_stride_ * 4]);
    lea(y_hi, ptr[y_ + y_stride3_ * 4]);
  }
  if (residual) {
    if (half == 0) {
      mov(res_lo, res_);
      lea(res_hi, ptr[res_ + res_stride_ * 8]);
    } else {
      lea(res_lo, ptr[res_ + res_stride_ * 4]);
      lea(res_hi, ptr[res_ + res_stride3_ * 4]);
    }
  }
  const Ymm inv = ymm12, qmax = ymm13, qmin = ymm14, high = ymm15;
  if (int8_output) {
    vbroadcastss(inv, arg(offsetof(BlockTileArgs, inv_y_scale)));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
  }
  auto store = [&](const Xmm& v, const Reg64& y_base, const Reg64& res_base, int j) {
    epilogue_.combine(operand, v, token(res_base, res_stride_, res_stride3_, j));
    if (int8_output) {
      epilogue_.requantize(v, Xmm(inv.getIdx()), Xmm(qmax.getIdx()), Xmm(qmin.getIdx()));
      vpackssdw(v, v, v);
      vpacksswb(v, v, v);
      vmovd(token(y_base, y_stride_, y_stride3_, j), v);
    } else {
      vmovups(token(y_base, y_stride_, y_stride3_, j), v);
    }
  };
  const bool plain_store = !residual && !int8_output;
  for (int j = 0; j < 4; ++j) {
    const Ymm o = acc(j, half);
    if (plain_store) {
      // fp32 without residual: both lanes go straight to memory.
      vmovups(token(y_lo, y_stride_, y_stride3_, j), Xmm(o.getIdx()));
      vextractf128(token(y_hi, y_stride_, y_stride3_, j), o, 1);
      continue;
    }
    // Take the high lane first: a VEX.128 op on xmm(o) clears the upper half of ymm(o).
    vextractf128(Xmm(high.getIdx()), o, 1);
    store(Xmm(o.getIdx()), y_lo, res_lo, j);
    store(Xmm(high.getIdx()), y_hi, res_hi, j);
  }
}

void Avx2TileGenerator::add_bias_and_activate(Activation activation) {
  const Ymm b = ymm11;
  group_row_offset(rcx);
  mov(rax, arg(offsetof(BlockTileArgs, bias)));
  add(rax, rcx);
  for (int r = 0; r < 4; ++r) {
    vbroadcastss(b, dword[rax + 4 * r]);
    for (int h = 0; h < 2; ++h) vaddps(acc(r, h), acc(r, h), b);
    // Both halves of the row at once, interleaved (see EpilogueEmitter).
    const EpilogueEmitter::Lane<Ymm> lanes[2] = {{acc(r, 0), ymm12, ymm13, ymm14},
                                                 {acc(r, 1), ymm8, ymm9, ymm10}};
    epilogue_.activation(activation, std::span<const EpilogueEmitter::Lane<Ymm>>(lanes));
  }
}

}  // namespace sparq::jit
