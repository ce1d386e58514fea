// AVX2 variant of the int8 4x1 block-sparse tile kernel (pairs_i16 layout).
//
// Per entry (two input columns c0, c1 of one 4-row group) and the slice's 16 tokens:
//   2 loads of 16 s16 activations, vpunpck{l,h}wd -> dwords (x[c0][t], x[c1][t]),
//   per row: broadcast dword (w[r][c0], w[r][c1]), 2 x (vpmaddwd + vpaddd).
// A 4-row x 16-token tile keeps 8 ymm accumulators; s16 products are exact, so the result equals
// the int32 reference bit for bit before the float epilogue. One call runs a block of groups
// over one slice, which stays in L1 while the groups' entries stream past.
#include <cstddef>

#include "jit/int8_block_generator.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

class Avx2Generator : public Int8BlockGenerator {
 public:
  explicit Avx2Generator(const Int8KernelKey& key) {
    generate(key);
    finalize();
  }

 private:
  static Ymm acc(int row, int half) { return Ymm(row * 2 + half); }

  void generate(const Int8KernelKey& key);
  void accumulate(bool prefetch_columns);
  void dequantize(const Int8KernelKey& key);
  void finish_half(const Int8KernelKey& key, int half);

  const Ymm x_scale_[2] = {ymm8, ymm9};  // kept for the whole call; the inner loop uses ymm12-15
};

#define ARG(field) arg(offsetof(Int8TileArgs, field))

void Avx2Generator::generate(const Int8KernelKey& key) {
  generate_group_loop(
      key,
      [&] {
        // The slice's token scales, the same for every group: ymm8 (half 0), ymm9 (half 1).
        mov(rax, ARG(x_scale));
        vmovups(x_scale_[0], ptr[rax]);
        vmovups(x_scale_[1], ptr[rax + 8 * sizeof(float)]);
      },
      [&] {
        accumulate(key.prefetch_columns);
        dequantize(key);
        finish_half(key, 0);
        finish_half(key, 1);
      });
}

void Avx2Generator::accumulate(bool prefetch_columns) {
  for (int r = 0; r < 4; ++r)
    for (int h = 0; h < 2; ++h) vpxor(acc(r, h), acc(r, h), acc(r, h));
  // entry_ = entries + 24 * group_begin[g]; count_ = group_begin[g + 1] - group_begin[g].
  mov(entry_, qword[group_]);
  mov(count_, qword[group_ + 8]);
  sub(count_, entry_);
  lea(entry_, ptr[entry_ + entry_ * 2]);
  shl(entry_, 3);
  add(entry_, ARG(entries));
  Label loop, end;
  test(count_, count_);
  jz(end, T_NEAR);
  L(loop);
  {
    const Ymm a = ymm12, b = ymm13, hi = ymm14, prod = ymm15;
    mov(eax, dword[entry_]);
    mov(r8d, dword[entry_ + 4]);
    vmovdqu(a, ptr[x_ + rax]);
    if (prefetch_columns) {
      constexpr int ahead = sparse::kEntryReadAhead * 24;
      mov(ebx, dword[entry_ + ahead]);
      prefetcht0(ptr[x_ + rbx]);
      mov(ebx, dword[entry_ + ahead + 4]);
      prefetcht0(ptr[x_ + rbx]);
    }
    // The second column is read twice as a memory operand: one vector load fewer per entry, and
    // the vector-op throughput, not L1 bandwidth, is what bounds this loop.
    vpunpckhwd(hi, a, ptr[x_ + r8]);  // tokens 4-7, 12-15
    vpunpcklwd(a, a, ptr[x_ + r8]);   // tokens 0-3, 8-11
    for (int r = 0; r < 4; ++r) {
      vpbroadcastd(b, dword[entry_ + 8 + 4 * r]);
      vpmaddwd(prod, a, b);
      vpaddd(acc(r, 0), acc(r, 0), prod);
      vpmaddwd(b, hi, b);
      vpaddd(acc(r, 1), acc(r, 1), b);
    }
    add(entry_, 24);
    dec(count_);
    jnz(loop);
  }
  L(end);
}

// Dequantize, bias and activation of all 8 accumulators; each row's scale and bias are
// broadcast once for both halves.
void Avx2Generator::dequantize(const Int8KernelKey& key) {
  const Ymm ws = ymm10, b = ymm11, t0 = ymm12, t1 = ymm13, t2 = ymm14;
  group_row_offset(rcx);
  mov(rax, ARG(w_scale));
  add(rax, rcx);
  mov(r8, ARG(bias));
  add(r8, rcx);
  for (int r = 0; r < 4; ++r) {
    vbroadcastss(ws, dword[rax + 4 * r]);
    vbroadcastss(b, dword[r8 + 4 * r]);
    for (int h = 0; h < 2; ++h) {
      const Ymm v = acc(r, h);
      vcvtdq2ps(v, v);
      vmulps(v, v, x_scale_[h]);
      vfmadd213ps(v, ws, b);
    }
    for (int h = 0; h < 2; ++h) epilogue_.activation(key.activation, acc(r, h), t0, t1, t2);
  }
}

// Transpose the 4 rows x 8 tokens of one half so that each token's 4 outputs are contiguous,
// add the residual, and store (fp32 or requantized int8).
void Avx2Generator::finish_half(const Int8KernelKey& key, int half) {
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
  if (key.residual) {
    if (half == 0) {
      mov(res_lo, res_);
      lea(res_hi, ptr[res_ + res_stride_ * 8]);
    } else {
      lea(res_lo, ptr[res_ + res_stride_ * 4]);
      lea(res_hi, ptr[res_ + res_stride3_ * 4]);
    }
  }
  const Ymm inv = ymm12, qmax = ymm13, qmin = ymm14, high = ymm15;
  if (key.int8_output) {
    vbroadcastss(inv, ARG(inv_y_scale));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
  }
  auto store = [&](const Xmm& v, const Reg64& y_base, const Reg64& res_base, int j) {
    if (key.residual) vaddps(v, v, token(res_base, res_stride_, res_stride3_, j));
    if (key.int8_output) {
      vmulps(v, v, Xmm(inv.getIdx()));
      vminps(v, v, Xmm(qmax.getIdx()));
      vmaxps(v, v, Xmm(qmin.getIdx()));
      vcvtps2dq(v, v);
      vpackssdw(v, v, v);
      vpacksswb(v, v, v);
      vmovd(token(y_base, y_stride_, y_stride3_, j), v);
    } else {
      vmovups(token(y_base, y_stride_, y_stride3_, j), v);
    }
  };
  const bool plain_store = !key.residual && !key.int8_output;
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

#undef ARG

class Avx2Kernel final : public Int8BlockKernel {
 public:
  explicit Avx2Kernel(const Int8KernelKey& key) : Int8BlockKernel(key), code_(key) {}
  void run(const Int8TileArgs& args) const override { code_.entry()(&args); }
  int tile_tokens() const override { return 16; }

 private:
  Avx2Generator code_;
};

}  // namespace

std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx2(const Int8KernelKey& key) {
  return std::make_unique<Avx2Kernel>(key);
}

}  // namespace sparq::jit
