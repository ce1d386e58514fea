#include "src/int8_decode_linear.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "jit/cpu_tuning.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
#include "src/activation_quant.hpp"
#include "src/decode_groups.hpp"

namespace sparq {

Int8DecodeLinear::Int8DecodeLinear(const int8_t* wq, const float* w_scale, const float* bias,
                                   int64_t out, int64_t in, jit::PostOps post_ops, jit::Isa isa,
                                   PoolRef threads)
    : weights_(sparse::pack_int8_decode(wq, w_scale, bias, out, in)),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  for (int t = 1; t <= sparse::kDecodeMaxTokens; ++t)
    for (int residual = 0; residual < 2; ++residual)
      for (int int8_out = 0; int8_out < 2; ++int8_out)
        kernels_[t - 1][residual][int8_out] = jit::int8_decode_kernel(
            {isa, t, post_ops.activation, post_ops.operand_for(residual == 1), int8_out == 1,
             jit::decode_prefetch(t)});
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
  quantize_rows(x, tokens, in, s8.data(), q.scales.data());
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
  const int64_t out = w.out, groups = w.groups();
  constexpr int64_t kGroupsPerCall = 4;
  parallel_ranges(*arena_, sparse::ceil_div(groups, kGroupsPerCall), [&](int64_t b0, int64_t b1) {
    jit::DecodeArgs a{};
    a.x_stride = w.in * static_cast<int64_t>(sizeof(int16_t));
    a.entries = w.entries.data();
    a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
    for (int64_t t0 = 0; t0 < q.tokens; t0 += kMaxTokens) {
      const int64_t nt = std::min(kMaxTokens, q.tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr][int8_out && !bf16_out];
      a.x = reinterpret_cast<const int16_t*>(q.x.data()) + t0 * w.in;
      a.x_scale = q.scales.data() + t0;
      const DecodeStep step{out, t0, nt, y, bf16_out ? 2 : (int8_out ? 1 : 4), bf16_out, residual};
      run_decode_groups(step, b0 * kGroupsPerCall, std::min(groups, b1 * kGroupsPerCall),
                        [&](int64_t g0, int64_t g1, void* y_at, int64_t y_stride,
                            const float* res_at, int64_t res_stride) {
                          a.group_begin = w.group_begin.data() + g0;
                          a.group_end = w.group_begin.data() + g1;
                          a.w_scale = w.scales.data() + g0 * kRows;
                          a.bias = w.bias.data() + g0 * kRows;
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
