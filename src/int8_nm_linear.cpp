#include "src/int8_nm_linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
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
                           int64_t in, Activation activation, bool use_avx2, int threads)
    : weights_(sparse::pack_int8_2of4(wq, w_scale, bias, out, in)),
      activation_(activation),
      use_avx2_(use_avx2),
      arena_(&arena_for(resolve_threads(threads))) {}

void Int8NmLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = weights_.in, padded = weights_.padded_in();
  q.reserve(tokens * padded, tokens);
  thread_local std::vector<int8_t> s8;
  s8.resize(static_cast<size_t>(tokens * in));
  sparse::quantize_rows(x, tokens, in, s8.data(), q.scales.data());
  auto* dst = reinterpret_cast<int8_t*>(q.x.data());
  for (int64_t t = 0; t < tokens; ++t) {
    std::memcpy(dst + t * padded, s8.data() + t * in, static_cast<size_t>(in));
    std::memset(dst + t * padded + in, 0, static_cast<size_t>(padded - in));
  }
  q.form = QuantizedInput::Impl::Form::nm_s8;
  q.tokens = tokens;
  q.in = in;
}

void Int8NmLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                       bool bf16_out) const {
  const sparse::Int8NmWeights& w = weights_;
  sparse::require(q.form == QuantizedInput::Impl::Form::nm_s8 && q.in == w.in, [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  const bool int8_out = y_scale > 0.0f;
  const float inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
  const int64_t out = w.out, padded = w.padded_in();
  const auto* x = reinterpret_cast<const int8_t*>(q.x.data());
  constexpr int64_t kRowsPerRange = 64;
  parallel_ranges(*arena_, sparse::ceil_div(out, kRowsPerRange), [&](int64_t b0, int64_t b1) {
    const int64_t r0 = b0 * kRowsPerRange, r1 = std::min(out, b1 * kRowsPerRange);
    thread_local std::vector<int32_t> sums;
    sums.resize(static_cast<size_t>(kNmMaxTokens * (r1 - r0)));
    for (int64_t t0 = 0; t0 < q.tokens; t0 += kNmMaxTokens) {
      const int nt = static_cast<int>(std::min<int64_t>(kNmMaxTokens, q.tokens - t0));
      (use_avx2_ ? int8_nm_rows_avx2 : int8_nm_rows_portable)(w, x + t0 * padded, padded, nt, r0,
                                                              r1, sums.data());
      for (int t = 0; t < nt; ++t)
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t i = (t0 + t) * out + r;
          float v = std::fma(static_cast<float>(sums[t * (r1 - r0) + (r - r0)]) * q.scales[t0 + t],
                             w.scales[r], w.bias[r]);
          v = sparse::activate(v, activation_);
          if (residual) v += residual[i];
          if (int8_out)
            static_cast<int8_t*>(y)[i] = sparse::requantize(v, inv_y_scale);
          else if (bf16_out)
            static_cast<uint16_t*>(y)[i] = sparse::to_bf16(v);
          else
            static_cast<float*>(y)[i] = v;
        }
    }
  });
}

}  // namespace sparq
