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
    : arena_(&arena_for(resolve_threads(threads))) {
  // A slice of activations (in x 16 s16 tokens on AVX2) beyond ~24 KiB no longer stays in L1.
  const bool prefetch_columns = in * 32 > 24 * 1024;
  for (int residual = 0; residual < 2; ++residual)
    for (int int8_out = 0; int8_out < 2; ++int8_out)
      kernels_[residual][int8_out] =
          jit::int8_block_kernel({isa, activation, residual == 1, int8_out == 1, prefetch_columns});
  weights_ = sparse::pack_int8_4x1(wq, w_scale, bias, out, in, kernels_[0][0]->layout());
}

void Int8BlockLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
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
  sparse::require(
      q.form == QuantizedInput::Impl::Form::block_layout && q.layout == layout() && q.in == w.in,
      [&] {
        return "forward: the QuantizedInput was not made by this layer's quantize_input "
               "(in_features " +
               std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
      });
  sparse::require(y != nullptr, "forward: y must not be null");
  const bool int8_out = y_scale > 0.0f;
  const auto& kernel = *kernels_[residual != nullptr][int8_out];
  const int64_t out = w.out, tokens = q.tokens;
  const int64_t elem = int8_out ? 1 : 4;
  const int tile = kernel.tile_tokens();  // = the layout's slice
  const int64_t slices = sparse::ceil_div(tokens, tile);
  const int64_t slice_bytes = w.in * sparse::x_column_bytes(w.layout);
  auto* y_bytes = static_cast<uint8_t*>(y);

  // Each thread takes a range of blocks of kGroupsPerCall row groups; for every slice of
  // tokens (outer loop: the slice stays in L1) one kernel call runs a whole block. Full blocks
  // are written straight into y. A block that runs short (tokens past the end of the last
  // slice, rows past the end of the last group) goes to a staging block instead, and only its
  // valid part is copied out, so the kernel itself never needs a partial store.
  constexpr int64_t kGroupsPerCall = 8;
  const int64_t stage_stride = kGroupsPerCall * 4 * elem;
  const int64_t stage_res_stride = kGroupsPerCall * 4 * sizeof(float);
  parallel_ranges(
      *arena_, sparse::ceil_div(w.groups(), kGroupsPerCall), [&](int64_t b0, int64_t b1) {
        alignas(64) uint8_t stage[sparse::kChunkTokens * kGroupsPerCall * 4 * sizeof(float)];
        alignas(64) float stage_res[sparse::kChunkTokens * kGroupsPerCall * 4];
        jit::BlockTileArgs a{};
        a.entries = w.entries.data();
        a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
        for (int64_t slice = 0; slice < slices; ++slice) {
          const int64_t t0 = slice * tile;
          const int64_t valid_t = std::min<int64_t>(tile, tokens - t0);
          a.x = q.x.data() + slice * slice_bytes;
          a.x_scale = q.scales.data() + t0;
          for (int64_t blk = b0; blk < b1; ++blk) {
            const int64_t g_begin = blk * kGroupsPerCall;
            const int64_t g_end = std::min(w.groups(), g_begin + kGroupsPerCall);
            const int64_t r_begin = g_begin * 4;
            const int64_t rows = std::min(out, g_end * 4) - r_begin;
            const bool direct = rows == kGroupsPerCall * 4 && valid_t == tile;
            uint8_t* y_block = y_bytes + (t0 * out + r_begin) * elem;
            const float* res_block = residual ? residual + t0 * out + r_begin : nullptr;
            if (direct) {
              a.y = y_block;
              a.y_stride = out * elem;
              a.residual_stride = out * static_cast<int64_t>(sizeof(float));
            } else {
              a.y = stage;
              a.y_stride = stage_stride;
              a.residual_stride = stage_res_stride;
              if (residual) {
                // Zeroed first: the kernel also reads the padding tokens and rows.
                std::memset(stage_res, 0, sizeof(stage_res));
                for (int64_t t = 0; t < valid_t; ++t)
                  std::memcpy(stage_res + t * kGroupsPerCall * 4, res_block + t * out,
                              static_cast<size_t>(rows) * sizeof(float));
                res_block = stage_res;
              }
            }
            a.residual = res_block;
            a.group_begin = w.group_begin.data() + g_begin;
            a.group_end = w.group_begin.data() + g_end;
            a.w_scale = w.scales.data() + r_begin;
            a.bias = w.bias.data() + r_begin;
            a.compensation = w.compensation.data() + r_begin;
            kernel.run(a);
            if (!direct)
              for (int64_t t = 0; t < valid_t; ++t)
                std::memcpy(y_block + t * out * elem, stage + t * stage_stride,
                            static_cast<size_t>(rows * elem));
          }
        }
      });
}

}  // namespace sparq
