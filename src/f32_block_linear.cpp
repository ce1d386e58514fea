#include "src/f32_block_linear.hpp"

#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/f32_activation_layout.hpp"
#include "src/tile_loop.hpp"

namespace sparq {

F32BlockLinear::F32BlockLinear(const float* w, const float* bias, int64_t out, int64_t in,
                               Activation activation, jit::Isa isa, int threads,
                               bool round_inputs_to_bf16)
    : arena_(&arena_for(resolve_threads(threads))), round_inputs_to_bf16_(round_inputs_to_bf16) {
  // A slice (in x 16 fp32 tokens) beyond ~24 KiB no longer stays in L1.
  const bool prefetch_columns = in * 64 > 24 * 1024;
  for (int residual = 0; residual < 2; ++residual)
    kernels_[residual] = jit::f32_block_kernel({isa, activation, residual == 1, prefetch_columns});
  weights_ = sparse::pack_f32_4x1(w, bias, out, in, kernels_[0]->tile_tokens());
}

void F32BlockLinear::run(const float* x, int64_t tokens, float* y, const float* residual) const {
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const sparse::F32BlockWeights& w = weights_;
  // Per calling thread, reused across calls: the hot path allocates only when it grows.
  thread_local AlignedVector<float> x_layout;
  x_layout.resize(static_cast<size_t>(sparse::f32_activation_floats(tokens, w.in, w.slice_tokens)));
  layout_f32_activations(x, tokens, w.in, w.slice_tokens, round_inputs_to_bf16_, x_layout.data());
  TileLoop loop;
  loop.kernel = kernels_[residual != nullptr].get();
  loop.arena = arena_;
  loop.out = w.out;
  loop.groups = w.groups();
  loop.group_begin = w.group_begin.data();
  loop.entries = w.entries.data();
  loop.bias = w.bias.data();
  loop.x = reinterpret_cast<const uint8_t*>(x_layout.data());
  loop.slice_bytes = w.in * w.slice_tokens * static_cast<int64_t>(sizeof(float));
  loop.tokens = tokens;
  loop.y = y;
  loop.y_element_bytes = 4;
  loop.residual = residual;
  run_tiles(loop);
}

}  // namespace sparq
