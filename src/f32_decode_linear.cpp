#include "src/f32_decode_linear.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "jit/cpu_tuning.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "src/decode_groups.hpp"

namespace sparq {

F32DecodeLinear::F32DecodeLinear(const float* w, const float* bias, int64_t out, int64_t in,
                                 bool bf16, jit::PostOps post_ops, jit::Isa isa, PoolRef threads,
                                 bool two_of_four)
    : weights_(two_of_four ? sparse::pack_f32_2of4_decode(w, bias, out, in, bf16)
                           : sparse::pack_f32_decode(w, bias, out, in, bf16)),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  for (int t = 1; t <= 4; ++t)
    for (int residual = 0; residual < 2; ++residual)
      kernels_[t - 1][residual] = jit::f32_decode_kernel({isa, t, bf16, post_ops.activation,
                                                          post_ops.operand_for(residual == 1),
                                                          two_of_four, jit::decode_prefetch(t)});
}

void F32DecodeLinear::run(const float* x, int64_t tokens, void* y_out, const float* residual,
                          bool bf16_out) const {
  sparse::require(x != nullptr && y_out != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const sparse::F32DecodeWeights& w = weights_;
  const int64_t out = w.out, in = w.in, padded = w.padded_in();
  if (w.bf16 || padded != in) {
    // bf16 semantics: the activations rounded too; 2:4 reads whole blocks of 4 columns (into
    // this thread's buffer, zero-padded).
    thread_local std::vector<float> copy;
    copy.assign(static_cast<size_t>(tokens * padded), 0.0f);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t i = 0; i < in; ++i)
        copy[static_cast<size_t>(t * padded + i)] =
            w.bf16 ? sparse::from_bf16(sparse::to_bf16(x[t * in + i])) : x[t * in + i];
    x = copy.data();
  }
  constexpr int64_t kRows = sparse::kF32DecodeRows, kGroupsPerCall = 4;
  const int64_t groups = w.groups();
  parallel_ranges(*arena_, sparse::ceil_div(groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
    jit::F32DecodeArgs a{};
    a.x_stride = padded * static_cast<int64_t>(sizeof(float));
    a.entries = w.entries.data();
    for (int64_t t0 = 0; t0 < tokens; t0 += 4) {
      const int64_t nt = std::min<int64_t>(4, tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr];
      a.x = x + t0 * padded;
      const DecodeStep step{out, t0, nt, y_out, bf16_out ? 2 : 4, bf16_out, residual};
      run_decode_groups(step, b0 * kGroupsPerCall, std::min(groups, b1 * kGroupsPerCall),
                        [&](int64_t g0, int64_t g1, void* y_at, int64_t y_stride,
                            const float* res_at, int64_t res_stride) {
                          a.group_begin = w.group_begin.data() + g0;
                          a.group_end = w.group_begin.data() + g1;
                          a.bias = w.bias.data() + g0 * kRows;
                          a.y = static_cast<float*>(y_at);
                          a.y_stride = y_stride;
                          a.residual = res_at;
                          a.residual_stride = res_stride;
                          kernel.run(a);
                        });
    }
  });
}

}  // namespace sparq
