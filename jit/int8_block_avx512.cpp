// AVX-512 VNNI variant of the int8 4x1 block-sparse tile kernel (quads_u8 layout), following the
// ITREX design: per entry (four input columns of one 4-row group) and 64 tokens,
//   4 loads of 64 u8 activations, vpunpck{l,h}bw then vpunpck{l,h}wd -> 4 zmm of dwords
//   (x[c0][t], x[c1][t], x[c2][t], x[c3][t]); per row, 4 x vpdpbusd against the row's 4 weights
//   broadcast from memory. 16 zmm accumulators (4 rows x 64 tokens).
// Activations are u8 = q + 128; the epilogue subtracts 128 * sum(w[r]) (the compensation).
#include <cstddef>

#include "jit/block_tile_generator.hpp"
#include "jit/int8_block_kernel.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class Avx512VnniGenerator : public BlockTileGenerator {
 public:
  explicit Avx512VnniGenerator(const Int8KernelKey& key) {
    generate(key);
    finalize();
  }

 private:
  // Accumulator of row r and token quarter q (lane L holds tokens 16L + 4q + 0..3).
  static Zmm acc(int row, int quarter) { return Zmm(row * 4 + quarter); }

  void generate(const Int8KernelKey& key);
  void accumulate();
  void finish_quarter(const Int8KernelKey& key, int quarter);

  void dequantize(const Int8KernelKey& key);
};

#define ARG(field) arg(offsetof(BlockTileArgs, field))

void Avx512VnniGenerator::generate(const Int8KernelKey& key) {
  generate_group_loop(
      key.residual, key.int8_output ? 1 : 4, [] {},
      [&] {
        accumulate();
        dequantize(key);
        for (int q = 0; q < 4; ++q) finish_quarter(key, q);
      });
}

// Dequantize, compensate, bias, activation for all 16 accumulators.
void Avx512VnniGenerator::dequantize(const Int8KernelKey& key) {
  group_row_offset(rcx);
  mov(rax, ARG(x_scale));
  mov(rbx, ARG(w_scale));
  add(rbx, rcx);
  mov(r8, ARG(bias));
  add(r8, rcx);
  mov(r9, ARG(compensation));
  add(r9, rcx);
  const Zmm scale = zmm16, t0 = zmm17, t1 = zmm18, t2 = zmm19;
  for (int q = 0; q < 4; ++q) {
    vmovups(scale, ptr[rax + q * 64]);
    for (int r = 0; r < 4; ++r) {
      const Zmm v = acc(r, q);
      vpsubd(v, v, ptr_b[r9 + 4 * r]);
      vcvtdq2ps(v, v);
      vmulps(v, v, scale);
      vbroadcastss(t1, dword[r8 + 4 * r]);
      vfmadd132ps(v, t1, ptr_b[rbx + 4 * r]);  // v = v * w_scale + bias
      epilogue_.activation(key.activation, v, t0, t1, t2);
    }
  }
}

void Avx512VnniGenerator::accumulate() {
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) vpxord(acc(r, q), acc(r, q), acc(r, q));
  // entry_ = entries + 32 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  shl(entry_, 5);
  add(entry_, ARG(entries));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Zmm c0 = zmm16, c1 = zmm17, c2 = zmm18, c3 = zmm19, lo01 = zmm20, lo23 = zmm21;
    const Zmm quarter[4] = {zmm22, zmm23, zmm24, zmm25};
    mov(eax, dword[entry_]);
    mov(r8d, dword[entry_ + 4]);
    mov(ebx, dword[entry_ + 8]);
    mov(r9d, dword[entry_ + 12]);
    vmovdqu8(c0, ptr[x_ + rax]);
    vmovdqu8(c1, ptr[x_ + r8]);
    vmovdqu8(c2, ptr[x_ + rbx]);
    vmovdqu8(c3, ptr[x_ + r9]);
    vpunpcklbw(lo01, c0, c1);  // tokens 16L + 0..7
    vpunpckhbw(c0, c0, c1);    // tokens 16L + 8..15
    vpunpcklbw(lo23, c2, c3);
    vpunpckhbw(c2, c2, c3);
    vpunpcklwd(quarter[0], lo01, lo23);
    vpunpckhwd(quarter[1], lo01, lo23);
    vpunpcklwd(quarter[2], c0, c2);
    vpunpckhwd(quarter[3], c0, c2);
    for (int r = 0; r < 4; ++r)
      for (int q = 0; q < 4; ++q) vpdpbusd(acc(r, q), quarter[q], ptr_b[entry_ + 16 + 4 * r]);
    add(entry_, 32);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

// Transpose the 4 rows of one quarter inside each 128-bit lane, so that lane L of output j holds
// token 16L + 4q + j's four rows, then store 16 tokens.
void Avx512VnniGenerator::finish_quarter(const Int8KernelKey& key, int q) {
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

  const Xmm v = xmm30, inv = xmm16, qmax = xmm17, qmin = xmm18;
  if (key.int8_output) {
    vbroadcastss(inv, ARG(inv_y_scale));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
  }
  const Reg64 y_base = rbx, res_base = rdx;
  for (int lane = 0; lane < 4; ++lane) {
    // Token 16 lane + 4 q: y + (16 lane + 4 q) * stride.
    mov(rax, 16 * lane + 4 * q);
    mov(y_base, rax);
    imul(y_base, y_stride_);
    add(y_base, y_);
    if (key.residual) {
      mov(res_base, rax);
      imul(res_base, res_stride_);
      add(res_base, res_);
    }
    for (int j = 0; j < 4; ++j) {
      vextractf32x4(v, acc(j, q), static_cast<uint8_t>(lane));
      if (key.residual) vaddps(v, v, token(res_base, res_stride_, res_stride3_, j));
      if (key.int8_output) {
        vmulps(v, v, inv);
        vminps(v, v, qmax);
        vmaxps(v, v, qmin);
        vcvtps2dq(v, v);
        vpackssdw(v, v, v);
        vpacksswb(v, v, v);
        vmovd(token(y_base, y_stride_, y_stride3_, j), v);
      } else {
        vmovups(token(y_base, y_stride_, y_stride3_, j), v);
      }
    }
  }
}

#undef ARG

class Avx512VnniKernel final : public Int8BlockKernel {
 public:
  explicit Avx512VnniKernel(const Int8KernelKey& key) : Int8BlockKernel(key), code_(key) {}
  void run(const BlockTileArgs& args) const override { code_.entry()(&args); }
  int tile_tokens() const override { return 64; }

 private:
  Avx512VnniGenerator code_;
};

}  // namespace

std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx512_vnni(const Int8KernelKey& key) {
  return std::make_unique<Avx512VnniKernel>(key);
}

}  // namespace sparq::jit
