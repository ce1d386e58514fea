#include "src/int8_block_linear.hpp"

#include <algorithm>
#include <cstring>

#include "sparse/checks.hpp"
#include "src/activation_quant.hpp"
#include "src/threading.hpp"

namespace sparq {

Int8BlockLinear::Int8BlockLinear(const int8_t* wq, const float* w_scale, const float* bias,
                                 int64_t out, int64_t in, Activation activation, jit::Isa isa,
                                 int threads)
    : threads_(resolve_threads(threads)) {
  for (int residual = 0; residual < 2; ++residual)
    for (int int8_out = 0; int8_out < 2; ++int8_out)
      kernels_[residual][int8_out] =
          jit::int8_block_kernel({isa, activation, residual == 1, int8_out == 1});
  weights_ = sparse::pack_int8_4x1(wq, w_scale, bias, out, in, kernels_[0][0]->layout());
}

void Int8BlockLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, "forward: tokens must be positive, got " + std::to_string(tokens));
  const int64_t in = weights_.in;
  q.reserve(activation_bytes(layout(), tokens, in), activation_scale_count(tokens));
  quantize_activations(x, tokens, in, layout(), q.x.data(), q.scales.data());
  q.form = QuantizedInput::Impl::Form::block_layout;
  q.layout = layout();
  q.tokens = tokens;
  q.in = in;
}

void Int8BlockLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                          const float* residual) const {
  const sparse::Int8BlockWeights& w = weights_;
  sparse::require(q.form == QuantizedInput::Impl::Form::block_layout && q.layout == layout() &&
                      q.in == w.in,
                  "forward: the QuantizedInput was not made by this layer's quantize_input "
                  "(in_features " + std::to_string(q.in) + ", expected " + std::to_string(w.in) +
                      ")");
  sparse::require(y != nullptr, "forward: y must not be null");
  const bool int8_out = y_scale > 0.0f;
  const auto& kernel = *kernels_[residual != nullptr][int8_out];
  const int64_t out = w.out, tokens = q.tokens;
  const int64_t elem = int8_out ? 1 : 4;
  const int64_t chunks = sparse::ceil_div(tokens, sparse::kChunkTokens);
  const int tile = kernel.tile_tokens();
  const int64_t entry_bytes = sparse::entry_bytes(w.layout);
  const int64_t chunk_bytes = w.in * sparse::x_column_bytes(w.layout);
  auto* y_bytes = static_cast<uint8_t*>(y);

  parallel_ranges(threads_, w.groups(), [&](int64_t g0, int64_t g1) {
    // Full tiles are written in place; short ones (last tokens, last rows) go through scratch.
    alignas(64) float scratch_y[sparse::kChunkTokens * 4];
    alignas(64) float scratch_res[sparse::kChunkTokens * 4];
    jit::Int8TileArgs a{};
    a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t t0 = ch * sparse::kChunkTokens;
      const int64_t valid_t = std::min<int64_t>(sparse::kChunkTokens, tokens - t0);
      a.n_steps = sparse::ceil_div(valid_t, tile);
      const int64_t tile_t = a.n_steps * tile;
      a.x = q.x.data() + ch * chunk_bytes;
      a.x_scale = q.scales.data() + t0;
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t r0 = g * 4, valid_r = std::min<int64_t>(4, out - r0);
        a.entries = w.entries.data() + w.group_begin[g] * entry_bytes;
        a.n_entries = w.group_begin[g + 1] - w.group_begin[g];
        a.w_scale = w.scales.data() + r0;
        a.bias = w.bias.data() + r0;
        a.compensation = w.compensation.data() + r0;
        const bool direct = valid_r == 4 && valid_t == tile_t;
        if (direct) {
          a.y = y_bytes + (t0 * out + r0) * elem;
          a.y_stride = out * elem;
          a.residual = residual ? residual + t0 * out + r0 : nullptr;
          a.residual_stride = out * 4;
        } else {
          a.y = scratch_y;
          a.y_stride = 4 * elem;
          if (residual) {
            std::memset(scratch_res, 0, sizeof(scratch_res));
            for (int64_t t = 0; t < valid_t; ++t)
              std::memcpy(scratch_res + t * 4, residual + (t0 + t) * out + r0,
                          static_cast<size_t>(valid_r) * 4);
            a.residual = scratch_res;
            a.residual_stride = 16;
          }
        }
        kernel.run(a);
        if (!direct) {
          const auto* src = reinterpret_cast<const uint8_t*>(scratch_y);
          for (int64_t t = 0; t < valid_t; ++t)
            std::memcpy(y_bytes + ((t0 + t) * out + r0) * elem, src + t * 4 * elem,
                        static_cast<size_t>(valid_r * elem));
        }
      }
    }
  });
}

}  // namespace sparq
