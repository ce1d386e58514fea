#include "src/int8_decode_linear.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
#include "src/bf16_convert.hpp"

namespace sparq {

Int8DecodeLinear::Int8DecodeLinear(const int8_t* wq, const float* w_scale, const float* bias,
                                   int64_t out, int64_t in, Activation activation, jit::Isa isa,
                                   int threads)
    : weights_(sparse::pack_int8_decode(wq, w_scale, bias, out, in)),
      arena_(&arena_for(resolve_threads(threads))) {
  for (int t = 1; t <= sparse::kDecodeMaxTokens; ++t)
    for (int residual = 0; residual < 2; ++residual)
      for (int int8_out = 0; int8_out < 2; ++int8_out)
        kernels_[t - 1][residual][int8_out] =
            jit::int8_decode_kernel({isa, t, activation, residual == 1, int8_out == 1});
}

void Int8DecodeLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = weights_.in;
  q.reserve(tokens * in * static_cast<int64_t>(sizeof(int16_t)), tokens);
  thread_local std::vector<int8_t> s8;
  s8.resize(static_cast<size_t>(tokens * in));
  sparse::quantize_rows(x, tokens, in, s8.data(), q.scales.data());
  auto* x16 = reinterpret_cast<int16_t*>(q.x.data());
  for (int64_t i = 0; i < tokens * in; ++i) x16[i] = s8[static_cast<size_t>(i)];
  q.form = QuantizedInput::Impl::Form::decode_s16;
  q.tokens = tokens;
  q.in = in;
}

void Int8DecodeLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                           const float* residual, bool bf16_out) const {
  const sparse::Int8DecodeWeights& w = weights_;
  sparse::require(q.form == QuantizedInput::Impl::Form::decode_s16 && q.in == w.in, [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  constexpr int64_t kRows = sparse::kDecodeRows, kMaxTokens = sparse::kDecodeMaxTokens;
  const bool int8_out = y_scale > 0.0f;
  const int64_t out = w.out, elem = int8_out ? 1 : 4;
  const int64_t groups = w.groups();
  // A short last group (out % 16 rows) runs into a staging block; every other group is stored
  // straight into y.
  const int64_t full_groups = out / kRows;
  auto* y_bytes = static_cast<uint8_t*>(y);
  constexpr int64_t kGroupsPerCall = 4;
  parallel_ranges(*arena_, sparse::ceil_div(groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
    alignas(64) uint8_t stage[kMaxTokens * kRows * sizeof(float)];
    alignas(64) float stage_res[kMaxTokens * kRows];
    jit::DecodeArgs a{};
    a.x_stride = w.in * static_cast<int64_t>(sizeof(int16_t));
    a.entries = w.entries.data();
    a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
    for (int64_t t0 = 0; t0 < q.tokens; t0 += kMaxTokens) {
      const int64_t nt = std::min(kMaxTokens, q.tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr][int8_out && !bf16_out];
      a.x = reinterpret_cast<const int16_t*>(q.x.data()) + t0 * w.in;
      a.x_scale = q.scales.data() + t0;
      const int64_t g_begin = b0 * kGroupsPerCall;
      const int64_t g_end = std::min(groups, b1 * kGroupsPerCall);
      auto call = [&](int64_t g0, int64_t g1, void* y_at, int64_t y_stride, const float* res_at,
                      int64_t res_stride) {
        a.group_begin = w.group_begin.data() + g0;
        a.group_end = w.group_begin.data() + g1;
        a.w_scale = w.scales.data() + g0 * kRows;
        a.bias = w.bias.data() + g0 * kRows;
        a.y = y_at;
        a.y_stride = y_stride;
        a.residual = res_at;
        a.residual_stride = res_stride;
        kernel.run(a);
      };
      if (bf16_out) {
        // One group at a time through the staging block, converted to bf16 on the way out.
        for (int64_t g = g_begin; g < g_end; ++g) {
          const int64_t r0 = g * kRows, rows = std::min(kRows, out - r0);
          const float* res_at = nullptr;
          int64_t res_stride = out * static_cast<int64_t>(sizeof(float));
          if (residual && rows == kRows) {
            res_at = residual + t0 * out + r0;
          } else if (residual) {
            std::memset(stage_res, 0, sizeof stage_res);
            for (int64_t t = 0; t < nt; ++t)
              std::memcpy(stage_res + t * kRows, residual + (t0 + t) * out + r0,
                          static_cast<size_t>(rows) * sizeof(float));
            res_at = stage_res;
            res_stride = kRows * static_cast<int64_t>(sizeof(float));
          }
          call(g, g + 1, stage, kRows * static_cast<int64_t>(sizeof(float)), res_at, res_stride);
          for (int64_t t = 0; t < nt; ++t)
            convert_to_bf16(reinterpret_cast<const float*>(stage) + t * kRows,
                            static_cast<uint16_t*>(y) + (t0 + t) * out + r0, rows);
        }
        continue;
      }
      const int64_t direct_end = std::min(g_end, full_groups);
      if (g_begin < direct_end)
        call(g_begin, direct_end, y_bytes + (t0 * out + g_begin * kRows) * elem, out * elem,
             residual ? residual + t0 * out + g_begin * kRows : nullptr,
             out * static_cast<int64_t>(sizeof(float)));
      if (direct_end < g_end) {  // the short last group
        const int64_t r0 = full_groups * kRows, rows = out - r0;
        if (residual) {
          std::memset(stage_res, 0, sizeof stage_res);
          for (int64_t t = 0; t < nt; ++t)
            std::memcpy(stage_res + t * kRows, residual + (t0 + t) * out + r0,
                        static_cast<size_t>(rows) * sizeof(float));
        }
        call(full_groups, g_end, stage, kRows * elem, residual ? stage_res : nullptr,
             kRows * static_cast<int64_t>(sizeof(float)));
        for (int64_t t = 0; t < nt; ++t)
          std::memcpy(y_bytes + ((t0 + t) * out + r0) * elem, stage + t * kRows * elem,
                      static_cast<size_t>(rows * elem));
      }
    }
  });
}

}  // namespace sparq
