#include "src/int8_nm_linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "jit/cpu_tuning.hpp"
#include "jit/post_ops.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
#include "src/activation_quant.hpp"
#include "src/decode_groups.hpp"
#include "src/int8_nm_kernel.hpp"

namespace sparq {

void int8_nm_rows_portable(const sparse::Int8NmWeights& w, const int8_t* x, int64_t x_stride,
                           int tokens, int64_t r0, int64_t r1, int32_t* sums) {
  for (int64_t r = r0; r < r1; ++r)
    for (int t = 0; t < tokens; ++t) {
      int32_t acc = 0;
      for (int64_t win = 0; win < w.windows; ++win) {
        const uint8_t* entry = w.entries.data() + (r * w.windows + win) * sparse::kNmWindowBytes;
        for (int slot = 0; slot < 32; ++slot) {
          const int64_t c = win * sparse::kNmWindow + 4 * sparse::nm_slot_block(slot) +
                            sparse::nm_slot_position(entry, slot);
          acc += int32_t{static_cast<int8_t>(entry[slot])} * x[t * x_stride + c];
        }
      }
      sums[t * (r1 - r0) + (r - r0)] = acc;
    }
}

Int8NmLinear::Int8NmLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                           int64_t in, jit::PostOps post_ops, jit::Isa isa, PoolRef threads)
    : isa_(isa),
      jit_(isa == jit::Isa::avx512_vnni),
      post_ops_(post_ops),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  if (!jit_) {
    weights_ = sparse::pack_int8_2of4(wq, w_scale, bias, out, in);
    return;
  }
  decode_weights_ = sparse::pack_int8_2of4_decode(wq, w_scale, bias, out, in);
  for (int t = 1; t <= sparse::kDecodeMaxTokens; ++t)
    for (int residual = 0; residual < 2; ++residual)
      for (int int8_out = 0; int8_out < 2; ++int8_out)
        kernels_[t - 1][residual][int8_out] = jit::int8_nm_decode_kernel(
            {isa, t, post_ops.activation, post_ops.operand_for(residual == 1), int8_out == 1,
             jit::decode_prefetch(t)});
}

std::string Int8NmLinear::kernel_name() const {
  if (jit_) return kernels_[0][0][0]->name();
  return isa_ >= jit::Isa::avx2 ? "cpp-avx2:int8-2:4" : "cpp:int8-2:4";
}

void Int8NmLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = jit_ ? decode_weights_.in : weights_.in;
  const int64_t padded = jit_ ? decode_weights_.padded_in() : weights_.padded_in();
  q.reserve(tokens * padded, tokens);
  thread_local std::vector<int8_t> s8;
  s8.resize(static_cast<size_t>(tokens * in));
  quantize_rows(x, tokens, in, s8.data(), q.scales.data());
  // The JIT kernel multiplies u8 = q + 128 (padding 0: its weights are zero); the row kernel s8.
  const uint8_t shift = jit_ ? 128 : 0;
  for (int64_t t = 0; t < tokens; ++t) {
    uint8_t* dst = q.x.data() + t * padded;
    const int8_t* src = s8.data() + t * in;
    for (int64_t i = 0; i < in; ++i) dst[i] = static_cast<uint8_t>(src[i] + shift);
    std::memset(dst + in, 0, static_cast<size_t>(padded - in));
  }
  q.form = jit_ ? QuantizedInput::Impl::Form::nm_u8 : QuantizedInput::Impl::Form::nm_s8;
  q.tokens = tokens;
  q.in = in;
}

bool Int8NmLinear::reads(const QuantizedInput::Impl& q) const {
  const int64_t in = jit_ ? decode_weights_.in : weights_.in;
  const auto form = jit_ ? QuantizedInput::Impl::Form::nm_u8 : QuantizedInput::Impl::Form::nm_s8;
  return q.form == form && q.in == in;
}

void Int8NmLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                       bool bf16_out) const {
  const int64_t in = jit_ ? decode_weights_.in : weights_.in;
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  if (jit_) {
    run_jit(q, y, y_scale, residual, bf16_out);
    return;
  }
  const sparse::Int8NmWeights& w = weights_;
  const bool use_avx2 = isa_ >= jit::Isa::avx2;
  const bool int8_out = y_scale > 0.0f;
  const float inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
  const jit::TileOutput output = int8_out   ? jit::TileOutput::s8
                                 : bf16_out ? jit::TileOutput::bf16
                                            : jit::TileOutput::f32;
  const jit::PostOpList post_ops = jit::PostOpList::make(
      true, post_ops_.activation, post_ops_.operand_for(residual != nullptr), output);
  const int64_t out = w.out, padded = w.padded_in();
  const auto* x = reinterpret_cast<const int8_t*>(q.x.data());
  constexpr int64_t kRowsPerRange = 64;
  parallel_ranges(*arena_, sparse::ceil_div(out, kRowsPerRange), [&](int64_t b0, int64_t b1) {
    const int64_t r0 = b0 * kRowsPerRange, r1 = std::min(out, b1 * kRowsPerRange);
    thread_local std::vector<int32_t> sums;
    sums.resize(static_cast<size_t>(kNmMaxTokens * (r1 - r0)));
    for (int64_t t0 = 0; t0 < q.tokens; t0 += kNmMaxTokens) {
      const int nt = static_cast<int>(std::min<int64_t>(kNmMaxTokens, q.tokens - t0));
      (use_avx2 ? int8_nm_rows_avx2 : int8_nm_rows_portable)(w, x + t0 * padded, padded, nt, r0, r1,
                                                             sums.data());
      for (int t = 0; t < nt; ++t)
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t i = (t0 + t) * out + r;
          const jit::PostOpInputs inputs{0, q.scales[t0 + t], w.scales[r], w.bias[r],
                                         residual ? residual[i] : 0.0f};
          jit::store_post_op(output,
                             jit::apply_post_ops(post_ops, sums[t * (r1 - r0) + (r - r0)], inputs),
                             static_cast<uint8_t*>(y) + i * jit::output_bytes(output), inv_y_scale);
        }
    }
  });
}

void Int8NmLinear::run_jit(const QuantizedInput::Impl& q, void* y, float y_scale,
                           const float* residual, bool bf16_out) const {
  const sparse::Int8NmDecodeWeights& w = decode_weights_;
  constexpr int64_t kRows = sparse::kNmDecodeRows, kMaxTokens = sparse::kDecodeMaxTokens;
  const bool int8_out = y_scale > 0.0f;
  const int64_t out = w.out, groups = w.groups();
  constexpr int64_t kGroupsPerCall = 4;
  parallel_ranges(*arena_, sparse::ceil_div(groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
    jit::NmDecodeArgs a{};
    a.x_stride = w.padded_in();
    a.entries = w.entries.data();
    a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
    for (int64_t t0 = 0; t0 < q.tokens; t0 += kMaxTokens) {
      const int64_t nt = std::min(kMaxTokens, q.tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr][int8_out && !bf16_out];
      a.x = q.x.data() + t0 * w.padded_in();
      a.x_scale = q.scales.data() + t0;
      const DecodeStep step{out, t0, nt, y, bf16_out ? 2 : (int8_out ? 1 : 4), bf16_out, residual};
      run_decode_groups(step, b0 * kGroupsPerCall, std::min(groups, b1 * kGroupsPerCall),
                        [&](int64_t g0, int64_t g1, void* y_at, int64_t y_stride,
                            const float* res_at, int64_t res_stride) {
                          a.group_begin = w.group_begin.data() + g0;
                          a.group_end = w.group_begin.data() + g1;
                          a.w_scale = w.scales.data() + g0 * kRows;
                          a.bias = w.bias.data() + g0 * kRows;
                          a.compensation = w.compensation.data() + g0 * kRows;
                          a.y = y_at;
                          a.y_stride = y_stride;
                          a.residual = res_at;
                          a.residual_stride = res_stride;
                          kernel.run(a);
                        });
    }
  });
}

}  // namespace sparq
