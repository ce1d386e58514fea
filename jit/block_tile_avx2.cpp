#include "jit/block_tile_avx2.hpp"

#include <cstddef>

namespace sparq::jit {

using namespace Xbyak;

void Avx2TileGenerator::store_half(int half, const PostOpList& post_ops) {
  const PostOpList join_and_store = post_ops.from(PostOpKind::binary);
  const bool residual = join_and_store.has(PostOpKind::binary);
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
  PostOpSources<Xmm> sources;
  if (join_and_store.output() == TileOutput::s8) {
    vbroadcastss(inv, arg(offsetof(BlockTileArgs, inv_y_scale)));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
    sources.inv_y_scale = Xmm(inv.getIdx());
    sources.quant_max = Xmm(qmax.getIdx());
    sources.quant_min = Xmm(qmin.getIdx());
  }
  // Lane 0: the token's low-lane half (token 4 half + j), lane 1: its high-lane one.
  int j = 0;
  sources.tensor = [&](int l) {
    return token(l == 0 ? res_lo : res_hi, res_stride_, res_stride3_, j);
  };
  sources.destination = [&](int l) {
    return token(l == 0 ? y_lo : y_hi, y_stride_, y_stride3_, j);
  };
  // Neither the join nor the store needs scratch.
  const Xmm scratch(10);
  for (j = 0; j < 4; ++j) {
    const Ymm o = acc(j, half);
    // Take the high lane first: a VEX.128 op on xmm(o) clears the upper half of ymm(o).
    vextractf128(Xmm(high.getIdx()), o, 1);
    const EpilogueEmitter::Lane<Xmm> lanes[2] = {{Xmm(o.getIdx()), scratch, scratch, scratch},
                                                 {Xmm(high.getIdx()), scratch, scratch, scratch}};
    epilogue_.apply(join_and_store, std::span<const EpilogueEmitter::Lane<Xmm>>(lanes), sources);
  }
}

void Avx2TileGenerator::tile_post_ops(const PostOpList& post_ops, const Ymm* x_scale) {
  const PostOpList ops = post_ops.before(PostOpKind::binary);
  const bool dequantize = ops.has(PostOpKind::dequantize);
  const Ymm ws = ymm10, b = ymm11;
  group_row_offset(rcx);
  PostOpSources<Ymm> sources;
  if (dequantize) {
    mov(rax, arg(offsetof(BlockTileArgs, w_scale)));
    add(rax, rcx);
    sources.x_scale = [&](int h) { return x_scale[h]; };
    sources.w_scale = [&](int) { return ws; };
  }
  mov(r8, arg(offsetof(BlockTileArgs, bias)));
  add(r8, rcx);
  sources.bias = [&](int) { return b; };
  for (int r = 0; r < 4; ++r) {
    if (dequantize) vbroadcastss(ws, dword[rax + 4 * r]);
    vbroadcastss(b, dword[r8 + 4 * r]);
    // Both halves of the row at once, interleaved (see EpilogueEmitter): ws and b are read by
    // the first ops of both lanes before the activation uses them as the second lane's scratch,
    // and broadcast again for the next row.
    const EpilogueEmitter::Lane<Ymm> lanes[2] = {{acc(r, 0), ymm12, ymm13, ymm14},
                                                 {acc(r, 1), ws, b, ymm15}};
    epilogue_.apply(ops, std::span<const EpilogueEmitter::Lane<Ymm>>(lanes), sources);
  }
}

}  // namespace sparq::jit
