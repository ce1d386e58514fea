#include "src/int8_block_linear.hpp"

#include <algorithm>

#include "sparse/checks.hpp"
#include "src/activation_quant.hpp"
#include "src/threading.hpp"
#include "src/tile_loop.hpp"

namespace sparq {

Int8BlockLinear::Int8BlockLinear(const int8_t* wq, const float* w_scale, const float* bias,
                                 int64_t out, int64_t in, jit::PostOps post_ops, jit::Isa isa,
                                 PoolRef threads)
    : arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  // A slice of activations (in x 16 s16 tokens on AVX2, 64 u8 on AVX-512) beyond ~24 KiB no
  // longer stays in L1.
  const int64_t column_bytes = isa == jit::Isa::avx512_vnni ? 64 : 32;
  const bool prefetch_columns = in * column_bytes > 24 * 1024;
  for (int residual = 0; residual < 2; ++residual)
    for (int output : {kF32Out, kS8Out, kBf16Out}) {
      jit::Int8KernelKey key{isa, post_ops.activation, post_ops.operand_for(residual == 1),
                             output == kS8Out, prefetch_columns};
      // Kernels that store partial tiles write bf16 themselves; the tile loop converts the fp32
      // tiles of the others.
      key.bf16_output = output == kBf16Out && isa == jit::Isa::avx512_vnni;
      kernels_[residual][output] = jit::int8_block_kernel(key);
      if (isa == jit::Isa::avx512_vnni) {
        key.quarters = 1;
        key.prefetch_columns = false;  // a quarter's columns are 16 of every 64 bytes
        key.vbmi = jit::can_run(jit::vbmi_features());
        quarter_kernels_[residual][output] = jit::int8_block_kernel(key);
      }
    }
  weights_ = sparse::pack_int8_4x1(wq, w_scale, bias, out, in, kernels_[0][0]->layout());
}

void quantize_block_layout(const float* x, int64_t tokens, int64_t in, sparse::Int8Layout layout,
                           tbb::task_arena& arena, QuantizedInput::Impl& q) {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  q.reserve(activation_bytes(layout, tokens, in), activation_scale_count(tokens));
  // Chunks of 64 tokens are independent: quantize them on the layer's threads.
  uint8_t* const xq = q.x.data();
  float* const scales = q.scales.data();
  const int64_t chunk_bytes = activation_bytes(layout, sparse::kChunkTokens, in);
  parallel_ranges(
      arena, sparse::ceil_div(tokens, sparse::kChunkTokens), [&](int64_t c0, int64_t c1) {
        const int64_t t0 = c0 * sparse::kChunkTokens;
        const int64_t t1 = std::min(tokens, c1 * sparse::kChunkTokens);
        quantize_activations(x + t0 * in, t1 - t0, in, layout, xq + c0 * chunk_bytes, scales + t0);
      });
  q.form = QuantizedInput::Impl::Form::block_layout;
  q.layout = layout;
  q.tokens = tokens;
  q.in = in;
}

void Int8BlockLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  quantize_block_layout(x, tokens, weights_.in, layout(), *arena_, q);
}

bool Int8BlockLinear::reads(const QuantizedInput::Impl& q) const {
  return q.form == QuantizedInput::Impl::Form::block_layout && q.layout == layout() &&
         q.in == weights_.in;
}

void Int8BlockLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                          const float* residual, bool bf16_out) const {
  const sparse::Int8BlockWeights& w = weights_;
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  const bool int8_out = y_scale > 0.0f;
  const Output output = int8_out ? kS8Out : bf16_out ? kBf16Out : kF32Out;
  // Full 64-token chunks on the 64-token tiles; a remainder of up to 16 tokens (32 with VBMI's
  // one-instruction gather) on 16-token tiles, quarters of its chunk. Measured on Zen 4 (int8 4x1
  // at 90 %, 3072 x 768 / 768 x 3072, us): 16 tokens 95.8 / 73.4 on the chunk, 48.9 / 41.2 on a
  // quarter (42.4 / 38.9 with VBMI); 32 tokens 99.3 / 75.5 on the chunk, 94.6 / 80.5 on two
  // quarters (86 / 78 with VBMI); 48 tokens 105 against 137 on three.
  const jit::Int8BlockKernel* quarter = quarter_kernels_[residual != nullptr][output].get();
  constexpr int64_t kChunk = sparse::kChunkTokens;
  const int64_t remainder = q.tokens % kChunk;
  const int64_t quarter_limit = quarter && quarter->key().vbmi ? 32 : 16;
  const int64_t on_quarters = quarter && remainder <= quarter_limit ? remainder : 0;
  const int64_t on_chunks = q.tokens - on_quarters;
  TileLoop loop;
  loop.kernel = kernels_[residual != nullptr][output].get();
  loop.arena = arena_;
  loop.out = w.out;
  loop.groups = w.groups();
  loop.group_begin = w.group_begin.data();
  loop.entries = w.entries.data();
  loop.w_scale = w.scales.data();
  loop.bias = w.bias.data();
  loop.compensation = w.compensation.data();
  loop.x = q.x.data();
  loop.slice_bytes = w.in * sparse::x_column_bytes(w.layout);
  loop.x_scales = q.scales.data();
  loop.tokens = q.tokens;
  loop.y = y;
  loop.y_element_bytes = int8_out ? 1 : 4;
  loop.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
  loop.bf16_output = bf16_out && !int8_out;
  loop.residual = residual;
  if (on_chunks > 0) {
    loop.tokens = on_chunks;
    run_tiles(loop);
  }
  if (on_quarters == 0) return;
  // The last chunk's quarters: x at the chunk (a quarter's 16 tokens are bytes 16 s.. of every
  // 64-byte column), and its token scales back in token order.
  const int64_t t0 = on_chunks, chunk = t0 / kChunk;
  alignas(64) float scales[kChunk];
  for (int slot = 0; slot < kChunk; ++slot)
    scales[sparse::chunk_token(w.layout, slot)] = q.scales[static_cast<size_t>(t0 + slot)];
  const int64_t y_elem = int8_out ? 1 : bf16_out ? 2 : 4;
  loop.kernel = quarter;
  loop.x = q.x.data() + chunk * w.in * sparse::x_column_bytes(w.layout);
  loop.slice_bytes = 16;
  loop.x_scales = scales;
  loop.tokens = on_quarters;
  loop.y = static_cast<uint8_t*>(y) + t0 * w.out * y_elem;
  loop.residual = residual ? residual + t0 * w.out : nullptr;
  run_tiles(loop);
}

}  // namespace sparq
