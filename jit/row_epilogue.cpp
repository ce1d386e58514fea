#include "jit/row_epilogue.hpp"

#include <xbyak/xbyak.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <type_traits>

#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"

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

  EpilogueEmitter epilogue_;
  const Reg64 args_ = rdi, acc_ = rsi, w_scale_ = rdx, bias_ = rcx, res_ = r8, y_ = r9, left_ = rax,
              comp_ = r10;
};

#define ARG(field) ptr[args_ + offsetof(RowEpilogueArgs, field)]

template <typename Vmm>
void RowEpilogueGenerator<Vmm>::generate(const RowEpilogueKey& key) {
  // Registers: lane u uses Vmm(4u) .. Vmm(4u + 3); x_scale, inv_y_scale and the clamp bounds sit
  // above them.
  const Vmm x_scale(4 * kUnroll), inv(4 * kUnroll + 1), qmax(4 * kUnroll + 2),
      qmin(4 * kUnroll + 3);
  const PostOpList post_ops = key.post_ops();
  const TileOutput output = post_ops.output();
  mov(acc_, ARG(acc));
  mov(w_scale_, ARG(w_scale));
  mov(bias_, ARG(bias));
  if (post_ops.has(PostOpKind::binary)) mov(res_, ARG(residual));
  mov(y_, ARG(y));
  mov(left_, ARG(blocks));
  if (key.compensation) mov(comp_, ARG(compensation));
  vbroadcastss(x_scale, ARG(x_scale));
  PostOpSources<Vmm> sources;
  sources.x_scale = [&](int) { return x_scale; };
  sources.w_scale = [&](int u) { return ptr[w_scale_ + u * kWidth * 4]; };
  sources.bias = [&](int u) { return ptr[bias_ + u * kWidth * 4]; };
  if (key.compensation) sources.compensation = [&](int u) { return ptr[comp_ + u * kWidth * 4]; };
  sources.tensor = [&](int u) { return ptr[res_ + u * kWidth * 4]; };
  sources.destination = [&](int u) { return ptr[y_ + u * kWidth * output_bytes(output)]; };
  if (output == TileOutput::s8) {
    vbroadcastss(inv, ARG(inv_y_scale));
    vmovups(qmax, epilogue_.constant(EpilogueEmitter::kQuantMax));
    vmovups(qmin, epilogue_.constant(EpilogueEmitter::kQuantMin));
    sources.inv_y_scale = inv;
    sources.quant_max = qmax;
    sources.quant_min = qmin;
  }
  if constexpr (kZmm) sources.nan_mask = k1;
  using Lane = EpilogueEmitter::Lane<Vmm>;
  Lane lanes[kUnroll];
  for (int u = 0; u < kUnroll; ++u)
    lanes[u] = {Vmm(4 * u), Vmm(4 * u + 1), Vmm(4 * u + 2), Vmm(4 * u + 3)};
  Label loop, done;
  test(left_, left_);
  jz(done, T_NEAR);
  L(loop);
  // The sums are the lanes' first operand: int32 ones are loaded as they are (dequantize
  // converts them), fp32 ones too.
  for (int u = 0; u < kUnroll; ++u) vmovups(lanes[u].x, ptr[acc_ + u * kWidth * 4]);
  epilogue_.apply(post_ops, std::span<const Lane>(lanes), sources);
  const int step = kBlock * 4;
  add(acc_, step);
  if (!key.float_acc) add(w_scale_, step);
  if (key.compensation) add(comp_, step);
  add(bias_, step);
  if (post_ops.has(PostOpKind::binary)) add(res_, step);
  add(y_, kBlock * output_bytes(output));
  dec(left_);
  jnz(loop, T_NEAR);
  L(done);
  vzeroupper();
  ret();
  epilogue_.emit_table();
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
              const float* bias, const float* residual, void* y, int64_t n, float inv_y_scale,
              const int32_t* compensation) {
  const PostOpList post_ops = key.post_ops();
  const int64_t y_elem = output_bytes(key.output);
  for (int64_t o = 0; o < n; ++o) {
    PostOpInputs in{key.compensation ? compensation[o] : 0, x_scale,
                    key.float_acc ? 1.0f : w_scale[o], bias[o], residual ? residual[o] : 0.0f};
    const float v = key.float_acc
                        ? apply_post_ops(post_ops, static_cast<const float*>(acc)[o], in)
                        : apply_post_ops(post_ops, static_cast<const int32_t*>(acc)[o], in);
    store_post_op(key.output, v, static_cast<uint8_t*>(y) + o * y_elem, inv_y_scale);
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
                        const float* residual, void* y, int64_t n, float inv_y_scale,
                        const int32_t* compensation) {
  const int64_t y_elem = output_bytes(key.output);
  if (!kernel) {
    portable(key, acc, x_scale, w_scale, bias, key.operand != Operand::none ? residual : nullptr, y,
             n, inv_y_scale, compensation);
    return;
  }
  const int64_t block = kernel->block();
  const int64_t whole = n / block * block;
  RowEpilogueArgs a{acc,           w_scale, bias,        residual,    y,
                    whole / block, x_scale, inv_y_scale, compensation};
  if (whole > 0) kernel->run(a);
  const int64_t tail = n - whole;
  if (tail == 0) return;
  // The tail through buffers of one block (zeros past the row's end).
  constexpr int64_t kMaxBlock = 64;
  // (int32 and fp32 sums alike: 4 bytes each, zero bits are zero in both.)
  alignas(64) int32_t acc_tail[kMaxBlock] = {}, comp_tail[kMaxBlock] = {};
  alignas(64) float scale_tail[kMaxBlock] = {}, bias_tail[kMaxBlock] = {}, res_tail[kMaxBlock] = {},
                    y_tail[kMaxBlock];
  std::memcpy(acc_tail, static_cast<const int32_t*>(acc) + whole,
              static_cast<size_t>(tail) * sizeof(int32_t));
  if (!key.float_acc) std::copy(w_scale + whole, w_scale + n, scale_tail);
  std::copy(bias + whole, bias + n, bias_tail);
  if (key.operand != Operand::none) std::copy(residual + whole, residual + n, res_tail);
  if (key.compensation) std::copy(compensation + whole, compensation + n, comp_tail);
  a = {acc_tail, scale_tail, bias_tail, res_tail, y_tail, 1, x_scale, inv_y_scale, comp_tail};
  kernel->run(a);
  std::memcpy(static_cast<uint8_t*>(y) + whole * y_elem, y_tail,
              static_cast<size_t>(tail * y_elem));
}

}  // namespace sparq::jit
