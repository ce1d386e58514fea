#include "jit/block_tile_avx512.hpp"

#include <cstddef>
#include <span>

namespace sparq::jit {

using namespace Xbyak;

void Avx512TileGenerator::store_quarter(int q, int quarters) {
  // 4x4 transposes inside each 128-bit lane: out j holds token 4 quarters L + 4q + j's rows in
  // lane L.
  const Zmm r0 = acc(0, q), r1 = acc(1, q), r2 = acc(2, q), r3 = acc(3, q);
  const Zmm u0 = zmm26, u1 = zmm27, u2 = zmm28, u3 = zmm29;
  vunpcklps(u0, r0, r1);
  vunpckhps(u1, r0, r1);
  vunpcklps(u2, r2, r3);
  vunpckhps(u3, r2, r3);
  vshufps(r0, u0, u2, 0x44);
  vshufps(r1, u0, u2, 0xee);
  vshufps(r2, u1, u3, 0x44);
  vshufps(r3, u1, u3, 0xee);
  for (int j = 0; j < 4; ++j)
    for (int lane = 0; lane < 4; ++lane) {
      const Address at = ptr[y_ + (4 * quarters * lane + 4 * q + j) * kStageRowBytes];
      if (lane == 0)
        vmovups(at, Xmm(acc(j, q).getIdx()));
      else
        vextractf32x4(at, acc(j, q), static_cast<uint8_t>(lane));
    }
}

void Avx512TileGenerator::tile_post_ops(const PostOpList& post_ops, int quarters) {
  // Dequantize and bias per row (the row's values broadcast once for its quarters), then the
  // activation over four accumulators at a time (GELU and SiLU are long dependent chains).
  const PostOpList per_row = post_ops.before(PostOpKind::activation);
  const PostOpList activate = post_ops.before(PostOpKind::binary).from(PostOpKind::activation);
  const bool dequantize = per_row.has(PostOpKind::dequantize);
  const Zmm comp = zmm16, w_scale = zmm17, bias = zmm18;
  group_row_offset(rcx);
  PostOpSources<Zmm> sources;
  if (dequantize) {
    mov(rax, arg(offsetof(BlockTileArgs, x_scale)));
    mov(rbx, arg(offsetof(BlockTileArgs, w_scale)));
    add(rbx, rcx);
    mov(r9, arg(offsetof(BlockTileArgs, compensation)));
    add(r9, rcx);
    sources.compensation = [&](int) { return comp; };
    sources.x_scale = [&](int q) { return ptr[rax + q * 64]; };  // the quarter's token scales
    sources.w_scale = [&](int) { return w_scale; };
  }
  mov(r8, arg(offsetof(BlockTileArgs, bias)));
  add(r8, rcx);
  sources.bias = [&](int) { return bias; };
  using Lane = EpilogueEmitter::Lane<Zmm>;
  for (int r = 0; r < 4; ++r) {
    if (dequantize) {
      vpbroadcastd(comp, ptr[r9 + 4 * r]);
      vbroadcastss(w_scale, ptr[rbx + 4 * r]);
    }
    vbroadcastss(bias, ptr[r8 + 4 * r]);
    Lane lanes[4];
    for (int q = 0; q < quarters; ++q) lanes[q] = {acc(r, q), zmm19, zmm20, zmm21};
    epilogue_.apply(per_row, std::span<const Lane>(lanes, static_cast<size_t>(quarters)), sources);
  }
  if (activate.ops().empty()) return;
  Lane lanes[4];
  int n = 0;
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < quarters; ++q) {
      lanes[n] = {acc(r, q), Zmm(16 + 3 * n), Zmm(17 + 3 * n), Zmm(18 + 3 * n)};
      if (++n == 4) {
        epilogue_.apply(activate, std::span<const Lane>(lanes), sources);
        n = 0;
      }
    }
}

namespace {
const Reg64 kSrc = Xbyak::util::rax, kDst = Xbyak::util::rbx, kDstStride = Xbyak::util::r11,
            kRes = Xbyak::util::r13, kResStride = Xbyak::util::r14, kLeft = Xbyak::util::r9;
}  // namespace

void Avx512TileGenerator::copy_out(const PostOpList& post_ops) {
  const bool residual = post_ops.has(PostOpKind::binary);
  mov(kSrc, arg(offsetof(BlockTileArgs, stage)));
  mov(kDst, arg(offsetof(BlockTileArgs, y)));
  mov(kDstStride, arg(offsetof(BlockTileArgs, y_stride)));
  if (residual) {
    mov(kRes, arg(offsetof(BlockTileArgs, residual)));
    mov(kResStride, arg(offsetof(BlockTileArgs, residual_stride)));
  }
  load_copy_state(post_ops.output(), offsetof(BlockTileArgs, valid_rows));
  mov(kLeft, arg(offsetof(BlockTileArgs, valid_tokens)));
  copy_rows(post_ops);
}

void Avx512TileGenerator::copy_previous_rows(const PostOpList& post_ops, int max_rows) {
  const bool residual = post_ops.has(PostOpKind::binary);
  Label skip, counted;
  mov(kLeft, pending_);
  sub(kLeft, copied_);
  jle(skip, T_NEAR);
  cmp(kLeft, max_rows);
  jle(counted);
  mov(kLeft, max_rows);
  L(counted);
  mov(kSrc, copied_);
  shl(kSrc, 7);
  static_assert(kStageRowBytes == 128, "rows of the stage are 128 bytes");
  add(kSrc, arg(offsetof(BlockTileArgs, prev_stage)));
  mov(kDstStride, arg(offsetof(BlockTileArgs, y_stride)));
  mov(kDst, copied_);
  imul(kDst, kDstStride);
  add(kDst, arg(offsetof(BlockTileArgs, prev_y)));
  if (residual) {
    mov(kResStride, arg(offsetof(BlockTileArgs, residual_stride)));
    mov(kRes, copied_);
    imul(kRes, kResStride);
    add(kRes, arg(offsetof(BlockTileArgs, prev_residual)));
  }
  add(copied_, kLeft);
  load_copy_state(post_ops.output(), offsetof(BlockTileArgs, prev_valid_rows));
  copy_rows(post_ops);
  L(skip);
}

void Avx512TileGenerator::load_copy_state(TileOutput output, size_t rows_field) {
  // Row masks: k(1 + c) for rows 16c..16c+15 of the call.
  constexpr int chunks = kStageRowBytes / 64;
  static_assert(chunks <= 4, "one mask register per 16 rows");
  mov(rcx, arg(rows_field));
  mov(r8, -1);
  bzhi(r8, r8, rcx);  // the low valid_rows bits (all 64 for valid_rows = 64)
  for (int c = 0; c < chunks; ++c) {
    kmovw(Opmask(1 + c), r8d);
    if (c + 1 < chunks) shr(r8, 16);
  }
  if (output == TileOutput::s8) {
    vbroadcastss(zmm2, arg(offsetof(BlockTileArgs, inv_y_scale)));
    vmovups(zmm3, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(zmm4, epilogue_.constant(EpilogueEmitter::kQuantMin));
  }
}

void Avx512TileGenerator::copy_rows(const PostOpList& post_ops) {
  const PostOpList join_and_store = post_ops.from(PostOpKind::binary);
  const bool residual = join_and_store.has(PostOpKind::binary);
  constexpr int chunks = kStageRowBytes / 64;
  const Reg64 src = kSrc, dst = kDst, dst_stride = kDstStride, res = kRes, res_stride = kResStride,
              left = kLeft;
  const Zmm v = zmm0, inv = zmm2, qmax = zmm3, qmin = zmm4, t = zmm5;
  PostOpSources<Zmm> sources;
  sources.tensor = [&](int) { return t; };
  if (join_and_store.output() == TileOutput::s8) {
    sources.inv_y_scale = inv;
    sources.quant_max = qmax;
    sources.quant_min = qmin;
  }
  sources.nan_mask = k7;
  // Only t0 serves as scratch here (the bf16 rounding): no activation is left.
  const EpilogueEmitter::Lane<Zmm> lane{v, t, zmm1, zmm1};
  Label token_loop;
  L(token_loop);
  for (int c = 0; c < chunks; ++c) {
    const Opmask k = Opmask(1 + c);
    vmovups(v, ptr[src + 64 * c]);
    // Masked: never reads past the valid rows.
    if (residual) vmovups(t | k | T_z, ptr[res + 64 * c]);
    sources.store_mask = k;
    sources.destination = [&, c](int) {
      return ptr[dst + 16 * output_bytes(join_and_store.output()) * c];
    };
    epilogue_.apply(join_and_store, lane, sources);
  }
  add(src, kStageRowBytes);
  add(dst, dst_stride);
  if (residual) add(res, res_stride);
  dec(left);
  jnz(token_loop, T_NEAR);
}

}  // namespace sparq::jit
