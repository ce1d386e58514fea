#include "src/f32_decode_linear.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "src/bf16_convert.hpp"

namespace sparq {

F32DecodeLinear::F32DecodeLinear(const float* w, const float* bias, int64_t out, int64_t in,
                                 bool bf16, Activation activation, jit::Isa isa, int threads)
    : weights_(sparse::pack_f32_decode(w, bias, out, in, bf16)),
      arena_(&arena_for(resolve_threads(threads))) {
  for (int t = 1; t <= 4; ++t)
    for (int residual = 0; residual < 2; ++residual)
      kernels_[t - 1][residual] = jit::f32_decode_kernel({isa, t, bf16, activation, residual == 1});
}

void F32DecodeLinear::run(const float* x, int64_t tokens, void* y_out, const float* residual,
                          bool bf16_out) const {
  auto* y = static_cast<float*>(y_out);
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const sparse::F32DecodeWeights& w = weights_;
  const int64_t out = w.out, in = w.in;
  if (w.bf16) {
    // bf16 semantics: the activations rounded too (into this thread's buffer).
    thread_local std::vector<float> rounded;
    rounded.resize(static_cast<size_t>(tokens * in));
    for (size_t i = 0; i < rounded.size(); ++i)
      rounded[i] = sparse::from_bf16(sparse::to_bf16(x[i]));
    x = rounded.data();
  }
  constexpr int64_t kRows = sparse::kF32DecodeRows, kGroupsPerCall = 4;
  const int64_t groups = w.groups(), full_groups = out / kRows;
  parallel_ranges(*arena_, sparse::ceil_div(groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
    alignas(64) float stage[4 * kRows];
    alignas(64) float stage_res[4 * kRows];
    jit::F32DecodeArgs a{};
    a.x_stride = in * static_cast<int64_t>(sizeof(float));
    a.entries = w.entries.data();
    for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
      const int64_t nt = std::min<int64_t>(4, tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr];
      a.x = x + t0 * in;
      const int64_t g_begin = b0 * kGroupsPerCall, g_end = std::min(groups, b1 * kGroupsPerCall);
      auto call = [&](int64_t g0, int64_t g1, float* y_at, int64_t y_stride, const float* res_at,
                      int64_t res_stride) {
        a.group_begin = w.group_begin.data() + g0;
        a.group_end = w.group_begin.data() + g1;
        a.bias = w.bias.data() + g0 * kRows;
        a.y = y_at;
        a.y_stride = y_stride * static_cast<int64_t>(sizeof(float));
        a.residual = res_at;
        a.residual_stride = res_stride * static_cast<int64_t>(sizeof(float));
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
          call(g, g + 1, stage, kRows, res_at, res_stride / static_cast<int64_t>(sizeof(float)));
          for (int64_t t = 0; t < nt; ++t)
            convert_to_bf16(stage + t * kRows, static_cast<uint16_t*>(y_out) + (t0 + t) * out + r0,
                            rows);
        }
        continue;
      }
      const int64_t direct_end = std::min(g_end, full_groups);
      if (g_begin < direct_end)
        call(g_begin, direct_end, y + t0 * out + g_begin * kRows, out,
             residual ? residual + t0 * out + g_begin * kRows : nullptr, out);
      if (direct_end < g_end) {  // the short last group, through a staging block
        const int64_t r0 = full_groups * kRows, rows = out - r0;
        if (residual) {
          std::memset(stage_res, 0, sizeof stage_res);
          for (int64_t t = 0; t < nt; ++t)
            std::memcpy(stage_res + t * kRows, residual + (t0 + t) * out + r0,
                        static_cast<size_t>(rows) * sizeof(float));
        }
        call(full_groups, g_end, stage, kRows, residual ? stage_res : nullptr, kRows);
        for (int64_t t = 0; t < nt; ++t)
          std::memcpy(y + (t0 + t) * out + r0, stage + t * kRows,
                      static_cast<size_t>(rows) * sizeof(float));
      }
    }
  });
}

}  // namespace sparq
