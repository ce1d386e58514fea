#include "src/f32_tile_linear.hpp"

#include <algorithm>

#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/f32_activation_layout.hpp"
#include "src/tile_loop.hpp"

namespace sparq {

F32TileLinear::F32TileLinear(const float* w, const float* bias, int64_t out, int64_t in,
                             jit::F32Layout layout, jit::PostOps post_ops, jit::Isa isa,
                             PoolRef threads, bool round_inputs_to_bf16)
    : layout_(layout != jit::F32Layout::bf16_4x1 ? layout
              : round_inputs_to_bf16 && isa >= jit::Isa::avx512 &&
                      jit::can_run(jit::bf16_features())
                  ? jit::F32Layout::bf16_4x1
                  : jit::F32Layout::block_4x1),
      out_(out),
      in_(in),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)),
      round_inputs_to_bf16_(round_inputs_to_bf16) {
  // A slice (in x 16 fp32 tokens on AVX2, 64 on AVX-512) beyond ~24 KiB no longer stays in L1.
  const int64_t column_bytes = layout_ == jit::F32Layout::bf16_4x1 ? sparse::kBf16ColumnBytes
                               : isa >= jit::Isa::avx512           ? 256
                                                                   : 64;
  const bool prefetch_columns = layout_ != jit::F32Layout::n2_m4 && in * column_bytes > 24 * 1024;
  for (int residual = 0; residual < 2; ++residual)
    for (int bf16 = 0; bf16 < 2; ++bf16) {
      jit::F32KernelKey key{isa, layout_, post_ops.activation, post_ops.operand_for(residual == 1),
                            prefetch_columns};
      // Kernels that store partial tiles write bf16 themselves; the tile loop converts the
      // others' fp32 tiles.
      key.bf16_output = bf16 == 1 && isa >= jit::Isa::avx512;
      kernels_[residual][bf16] = jit::f32_block_kernel(key);
      // The AVX-512 fp32 4x1 and 2:4 kernels also on 32-token tiles: a call's remainder of at
      // most 32 tokens (and a call that short) computes 32 token lanes, not 64.
      if (layout_ != jit::F32Layout::bf16_4x1 && isa >= jit::Isa::avx512) {
        key.quarters = 2;
        short_kernels_[residual][bf16] = jit::f32_block_kernel(key);
      }
    }
  const int slice = kernels_[0][0]->tile_tokens();
  if (layout_ == jit::F32Layout::n2_m4)
    nm_ = sparse::pack_f32_2of4(w, bias, out, in, slice);
  else if (layout_ == jit::F32Layout::bf16_4x1)
    bf16_ = sparse::pack_bf16_4x1(w, bias, out, in);
  else
    block_ = sparse::pack_f32_4x1(w, bias, out, in, slice);
}

int64_t F32TileLinear::packed_bytes() const {
  return layout_ == jit::F32Layout::n2_m4      ? nm_.bytes()
         : layout_ == jit::F32Layout::bf16_4x1 ? bf16_.bytes()
                                               : block_.bytes();
}

void F32TileLinear::run(const float* x, int64_t tokens, void* y, const float* residual,
                        bool bf16_out) const {
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t remainder = tokens % kernels_[0][0]->tile_tokens();
  if (!short_kernels_[0][0] || remainder == 0 || remainder > short_kernels_[0][0]->tile_tokens()) {
    run_tiles_of(kernels_, x, tokens, y, residual, bf16_out);
    return;
  }
  const int64_t full = tokens - remainder;
  if (full > 0) run_tiles_of(kernels_, x, full, y, residual, bf16_out);
  const int64_t y_element_bytes = bf16_out ? 2 : 4;
  run_tiles_of(short_kernels_, x + full * in_, remainder,
               static_cast<uint8_t*>(y) + full * out_ * y_element_bytes,
               residual ? residual + full * out_ : nullptr, bf16_out);
}

void F32TileLinear::run_tiles_of(const Kernels& kernels, const float* x, int64_t tokens, void* y,
                                 const float* residual, bool bf16_out) const {
  const int slice = kernels[0][0]->tile_tokens();
  const bool bf16_pairs = layout_ == jit::F32Layout::bf16_4x1;
  const int64_t element_bytes = bf16_pairs ? 2 : 4;
  // Per calling thread, reused across calls: the hot path allocates only when it grows. (The 2:4
  // kernel reads only kept values' columns, which all lie below `in`.)
  thread_local AlignedVector<uint8_t> x_layout;
  x_layout.resize(
      static_cast<size_t>(sparse::f32_activation_floats(tokens, in_, slice) * element_bytes));
  // The re-layout is a tenth of a 90 %-sparse layer's time: split it over the threads too
  // (into this thread's buffer: the lambda must not name the thread_local).
  uint8_t* const laid_out = x_layout.data();
  parallel_ranges(*arena_, sparse::ceil_div(tokens, slice), [&](int64_t s0, int64_t s1) {
    const int64_t t0 = s0 * slice, t1 = std::min(tokens, s1 * slice);
    uint8_t* dst = laid_out + s0 * in_ * slice * element_bytes;
    if (bf16_pairs)
      layout_bf16_activations(x + t0 * in_, t1 - t0, in_, reinterpret_cast<uint16_t*>(dst));
    else
      layout_f32_activations(x + t0 * in_, t1 - t0, in_, slice, round_inputs_to_bf16_,
                             reinterpret_cast<float*>(dst));
  });
  TileLoop loop;
  loop.kernel = kernels[residual != nullptr][bf16_out].get();
  loop.arena = arena_;
  loop.out = out_;
  if (layout_ == jit::F32Layout::n2_m4) {
    loop.groups = nm_.groups();
    loop.group_begin = nm_.group_begin.data();
    loop.entries = nm_.entries.data();
    loop.bias = nm_.bias.data();
  } else if (bf16_pairs) {
    loop.groups = bf16_.groups();
    loop.group_begin = bf16_.group_begin.data();
    loop.entries = bf16_.entries.data();
    loop.bias = bf16_.bias.data();
  } else {
    loop.groups = block_.groups();
    loop.group_begin = block_.group_begin.data();
    loop.entries = block_.entries.data();
    loop.bias = block_.bias.data();
  }
  loop.x = laid_out;
  loop.slice_bytes = in_ * slice * element_bytes;
  loop.tokens = tokens;
  loop.y = y;
  loop.y_element_bytes = 4;
  loop.bf16_output = bf16_out;
  loop.residual = residual;
  run_tiles(loop);
}

}  // namespace sparq
