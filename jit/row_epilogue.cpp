#include "jit/row_epilogue.hpp"

#include <xbyak/xbyak.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>

#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/reference.hpp"

namespace sparq::jit {
namespace {

using namespace Xbyak;

// Unroll: four vectors per step on AVX-512 (32 registers), two on AVX2 (16), so that the
// activation's dependent chains of independent vectors interleave.
template <typename Vmm>
class RowEpilogueGenerator : public Generator {
 public:
  static constexpr bool kZmm = std::is_same_v<Vmm, Zmm>;
  static constexpr int kWidth = kZmm ? 16 : 8;
  static constexpr int kUnroll = kZmm ? 4 : 2;
  static constexpr int kBlock = kWidth * kUnroll;

  explicit RowEpilogueGenerator(const RowEpilogueKey& key) : epilogue_(*this) {
    generate(key);
    finalize(features_of(key.isa));
  }

 private:
  void generate(const RowEpilogueKey& key);
  void store(TileOutput output, const Vmm& v, const Vmm& t, int u);

  EpilogueEmitter epilogue_;
  const Reg64 args_ = rdi, acc_ = rsi, w_scale_ = rdx, bias_ = rcx, res_ = r8, y_ = r9, left_ = rax;
};

#define ARG(field) ptr[args_ + offsetof(RowEpilogueArgs, field)]

template <typename Vmm>
void RowEpilogueGenerator<Vmm>::generate(const RowEpilogueKey& key) {
  // Registers: lane u uses Vmm(4u) .. Vmm(4u + 3); x_scale, inv_y_scale and the clamp bounds sit
  // above them.
  const Vmm x_scale(4 * kUnroll), inv(4 * kUnroll + 1), qmax(4 * kUnroll + 2),
      qmin(4 * kUnroll + 3);
  mov(acc_, ARG(acc));
  mov(w_scale_, ARG(w_scale));
  mov(bias_, ARG(bias));
  if (key.operand != Operand::none) mov(res_, ARG(residual));
  mov(y_, ARG(y));
  mov(left_, ARG(blocks));
  vbroadcastss(x_scale, ARG(x_scale));
  if (key.output == TileOutput::s8) {
    vbroadcastss(inv, ARG(inv_y_scale));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
  }
  using Lane = EpilogueEmitter::Lane<Vmm>;
  Lane lanes[kUnroll];
  for (int u = 0; u < kUnroll; ++u)
    lanes[u] = {Vmm(4 * u), Vmm(4 * u + 1), Vmm(4 * u + 2), Vmm(4 * u + 3)};
  Label loop, done;
  test(left_, left_);
  jz(done, T_NEAR);
  L(loop);
  for (int u = 0; u < kUnroll; ++u) {
    const Vmm& v = lanes[u].x;
    const int at = u * kWidth * 4;
    if (key.float_acc) {
      vmovups(v, ptr[acc_ + at]);
      vaddps(v, v, ptr[bias_ + at]);
      continue;
    }
    vcvtdq2ps(v, ptr[acc_ + at]);
    vmulps(v, v, x_scale);
    vmovups(lanes[u].t0, ptr[bias_ + at]);
    vfmadd132ps(v, lanes[u].t0, ptr[w_scale_ + at]);  // v = v * w_scale + bias
  }
  epilogue_.activation(key.activation, std::span<const Lane>(lanes));
  for (int u = 0; u < kUnroll; ++u) {
    const Vmm& v = lanes[u].x;
    epilogue_.combine(key.operand, v, ptr[res_ + u * kWidth * 4]);
    if (key.output == TileOutput::s8) epilogue_.requantize(v, inv, qmax, qmin);
    store(key.output, v, lanes[u].t0, u);
  }
  const int step = kBlock * 4;
  add(acc_, step);
  if (!key.float_acc) add(w_scale_, step);
  add(bias_, step);
  if (key.operand != Operand::none) add(res_, step);
  add(y_, kBlock * (key.output == TileOutput::f32 ? 4 : key.output == TileOutput::s8 ? 1 : 2));
  dec(left_);
  jnz(loop, T_NEAR);
  L(done);
  vzeroupper();
  ret();
  epilogue_.emit_table();
}

template <typename Vmm>
void RowEpilogueGenerator<Vmm>::store(TileOutput output, const Vmm& v, const Vmm& t, int u) {
  switch (output) {
    case TileOutput::f32:
      vmovups(ptr[y_ + u * kWidth * 4], v);
      return;
    case TileOutput::s8:
      // v holds the rounded, clamped values as dwords.
      if constexpr (kZmm) {
        vpmovsdb(ptr[y_ + u * kWidth], v);
      } else {
        const Xmm lo(v.getIdx()), hi(t.getIdx());
        vextracti128(hi, v, 1);
        vpackssdw(lo, lo, hi);
        vpacksswb(lo, lo, lo);
        vmovq(ptr[y_ + u * kWidth], lo);
      }
      return;
    case TileOutput::bf16: {
      if constexpr (kZmm) {
        epilogue_.round_to_bf16(t, v, k1);
        vpmovdw(ptr[y_ + u * kWidth * 2], t);
      } else {
        epilogue_.round_to_bf16(t, v, Vmm(15));
        const Xmm lo(t.getIdx()), hi(15);
        vextracti128(hi, t, 1);
        vpackusdw(lo, lo, hi);
        vmovdqu(ptr[y_ + u * kWidth * 2], lo);
      }
      return;
    }
  }
}

#undef ARG

template <typename Vmm>
class GeneratedRowEpilogue final : public RowEpilogue {
 public:
  explicit GeneratedRowEpilogue(const RowEpilogueKey& key) : code_(key) {}
  int block() const override { return RowEpilogueGenerator<Vmm>::kBlock; }
  void run(const RowEpilogueArgs& args) const override { code_.run(&args); }

 private:
  RowEpilogueGenerator<Vmm> code_;
};

void portable(const RowEpilogueKey& key, const void* acc, float x_scale, const float* w_scale,
              const float* bias, const float* residual, void* y, int64_t n, float inv_y_scale) {
  for (int64_t o = 0; o < n; ++o) {
    float v = key.float_acc
                  ? static_cast<const float*>(acc)[o] + bias[o]
                  : std::fma(static_cast<float>(static_cast<const int32_t*>(acc)[o]) * x_scale,
                             w_scale[o], bias[o]);
    v = sparse::activate(v, key.activation);
    if (residual) v = combine(key.operand, v, residual[o]);
    switch (key.output) {
      case TileOutput::f32:
        static_cast<float*>(y)[o] = v;
        break;
      case TileOutput::s8:
        static_cast<int8_t*>(y)[o] = sparse::requantize(v, inv_y_scale);
        break;
      case TileOutput::bf16:
        static_cast<uint16_t*>(y)[o] = sparse::to_bf16(v);
        break;
    }
  }
}

}  // namespace

std::shared_ptr<const RowEpilogue> row_epilogue(const RowEpilogueKey& key) {
  if (key.isa == Isa::reference || !can_run(key.isa))
    throw NotSupported(std::string("row epilogue for ") + isa_name(key.isa) +
                       " requested; it is generated for avx2 and avx512 where available");
  static KernelCache<RowEpilogueKey, RowEpilogue> cache;
  return cache.get(key, [&]() -> std::unique_ptr<RowEpilogue> {
    if (key.isa >= Isa::avx512) return std::make_unique<GeneratedRowEpilogue<Zmm>>(key);
    return std::make_unique<GeneratedRowEpilogue<Ymm>>(key);
  });
}

void apply_row_epilogue(const RowEpilogue* kernel, const RowEpilogueKey& key, const void* acc,
                        float x_scale, const float* w_scale, const float* bias,
                        const float* residual, void* y, int64_t n, float inv_y_scale) {
  const int64_t y_elem = key.output == TileOutput::f32 ? 4 : key.output == TileOutput::s8 ? 1 : 2;
  if (!kernel) {
    portable(key, acc, x_scale, w_scale, bias, key.operand != Operand::none ? residual : nullptr, y,
             n, inv_y_scale);
    return;
  }
  const int64_t block = kernel->block();
  const int64_t whole = n / block * block;
  RowEpilogueArgs a{acc, w_scale, bias, residual, y, whole / block, x_scale, inv_y_scale};
  if (whole > 0) kernel->run(a);
  const int64_t tail = n - whole;
  if (tail == 0) return;
  // The tail through buffers of one block (zeros past the row's end).
  constexpr int64_t kMaxBlock = 64;
  // (int32 and fp32 sums alike: 4 bytes each, zero bits are zero in both.)
  alignas(64) int32_t acc_tail[kMaxBlock] = {};
  alignas(64) float scale_tail[kMaxBlock] = {}, bias_tail[kMaxBlock] = {}, res_tail[kMaxBlock] = {},
                    y_tail[kMaxBlock];
  std::memcpy(acc_tail, static_cast<const int32_t*>(acc) + whole,
              static_cast<size_t>(tail) * sizeof(int32_t));
  if (!key.float_acc) std::copy(w_scale + whole, w_scale + n, scale_tail);
  std::copy(bias + whole, bias + n, bias_tail);
  if (key.operand != Operand::none) std::copy(residual + whole, residual + n, res_tail);
  a = {acc_tail, scale_tail, bias_tail, res_tail, y_tail, 1, x_scale, inv_y_scale};
  kernel->run(a);
  std::memcpy(static_cast<uint8_t*>(y) + whole * y_elem, y_tail,
              static_cast<size_t>(tail * y_elem));
}

}  // namespace sparq::jit
