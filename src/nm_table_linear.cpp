#include "src/nm_table_linear.hpp"

#include <algorithm>

#include "sparse/bf16_block_pack.hpp"
#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/f32_activation_layout.hpp"
#include "src/int8_block_linear.hpp"
#include "src/nm_table_build.hpp"

namespace sparq {
namespace {

constexpr int64_t kPartialBytesPerGroup = 16 * 64;

}  // namespace

// One forward call: the activation slices and where the output goes.
struct NmTableLinear::Call {
  // `full` slices of 64 tokens, slice_bytes apart, then up to two short slices of 16 *
  // short_quarters[k] tokens (0: none) in the short-slice layout, each right after the one
  // before it.
  const uint8_t* x = nullptr;
  int64_t slice_bytes = 0;
  int64_t full = 0;
  int short_quarters[2] = {0, 0};
  const float* x_scales = nullptr;  // int8: per token, lane order
  int64_t tokens = 0;
  void* y = nullptr;
  jit::TileOutput output = jit::TileOutput::f32;
  float inv_y_scale = 0.0f;
  const float* residual = nullptr;
};

NmTableLinear::NmTableLinear(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                             int64_t in, jit::PostOps post_ops, PoolRef threads)
    : weights_(sparse::pack_int8_2of4_table(wq, w_scale, bias, out, in)),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  make_kernels(post_ops);
}

NmTableLinear::NmTableLinear(const float* w, const float* bias, int64_t out, int64_t in,
                             jit::PostOps post_ops, PoolRef threads)
    : weights_(sparse::pack_bf16_2of4_table(w, bias, out, in)),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  make_kernels(post_ops);
}

void NmTableLinear::make_kernels(jit::PostOps post_ops) {
  const bool int8 = weights_.type == sparse::NmTableType::int8;
  for (int residual = 0; residual < 2; ++residual)
    for (auto output : {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
      for (int quarters : {1, 2, 4}) {
        if (int8 && quarters != 4) continue;
        if (!int8 && output == jit::TileOutput::s8) continue;
        kernels_[residual][static_cast<int>(output)][quarters_index(quarters)] =
            jit::nm_table_kernel({weights_.type, post_ops.activation,
                                  post_ops.operand_for(residual == 1), output, quarters});
      }
}

void NmTableLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(weights_.type == sparse::NmTableType::int8,
                  "NmTableLinear::quantize: the layer is bf16");
  quantize_block_layout(x, tokens, weights_.in, sparse::Int8Layout::quads_u8, *arena_, q);
}

bool NmTableLinear::reads(const QuantizedInput::Impl& q) const {
  return weights_.type == sparse::NmTableType::int8 &&
         q.form == QuantizedInput::Impl::Form::block_layout &&
         q.layout == sparse::Int8Layout::quads_u8 && q.in == weights_.in;
}

void NmTableLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                        const float* residual, bool bf16_out) const {
  const int64_t in = weights_.in;
  sparse::require(weights_.type == sparse::NmTableType::int8,
                  "NmTableLinear::run: the layer is bf16");
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's "
           "quantize_input (in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  Call call;
  call.x = q.x.data();
  call.slice_bytes = in * sparse::x_column_bytes(sparse::Int8Layout::quads_u8);
  call.full = sparse::ceil_div(q.tokens, sparse::kNmTableSliceTokens);
  call.x_scales = q.scales.data();
  call.tokens = q.tokens;
  call.y = y;
  call.output = y_scale > 0.0f ? jit::TileOutput::s8
                : bf16_out     ? jit::TileOutput::bf16
                               : jit::TileOutput::f32;
  call.inv_y_scale = y_scale > 0.0f ? 1.0f / y_scale : 0.0f;
  call.residual = residual;
  run_slices(call);
}

void NmTableLinear::run(const float* x, int64_t tokens, void* y, const float* residual,
                        bool bf16_out) const {
  sparse::require(weights_.type == sparse::NmTableType::bf16,
                  "NmTableLinear::run: the layer is int8 (quantize first)");
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = weights_.in;
  // Full 64-token slices, and the call's remainder (up to 48 tokens) on short slices of 32 and
  // 16 tokens in token order, so that it computes 16 or 32 lanes per 16 tokens, not 64.
  constexpr int64_t kSlice = sparse::kBf16SliceTokens;
  const int64_t remainder = tokens % kSlice;
  int short_quarters[2] = {0, 0};
  if (remainder > 0 && remainder <= 48) {
    short_quarters[0] = remainder > 16 ? 2 : 1;
    if (remainder > 32) short_quarters[1] = 1;
  }
  const int64_t full = short_quarters[0] ? tokens / kSlice : sparse::ceil_div(tokens, kSlice);
  // Per calling thread, reused across calls: the hot path allocates only when it grows.
  thread_local AlignedVector<uint16_t> x_bf16;
  x_bf16.resize(static_cast<size_t>((full + 1) * in * kSlice));
  uint16_t* const laid_out = x_bf16.data();
  parallel_ranges(*arena_, full + 1, [&](int64_t s0, int64_t s1) {
    for (int64_t s = s0; s < s1; ++s) {
      const int64_t t0 = s * kSlice;
      if (s < full) {
        layout_bf16_activations(x + t0 * in, std::min(kSlice, tokens - t0), in,
                                laid_out + s * in * kSlice);
        continue;
      }
      uint16_t* at = laid_out + s * in * kSlice;
      for (int k = 0, t = 0; k < 2 && short_quarters[k]; ++k) {
        const int n = 16 * short_quarters[k];
        sparse::layout_bf16_natural(x + (t0 + t) * in, std::min<int64_t>(n, tokens - t0 - t), in, n,
                                    at);
        at += in * n;
        t += n;
      }
    }
  });
  Call call;
  call.x = reinterpret_cast<const uint8_t*>(laid_out);
  call.slice_bytes = in * sparse::kBf16ColumnBytes;
  call.full = full;
  call.short_quarters[0] = short_quarters[0];
  call.short_quarters[1] = short_quarters[1];
  call.tokens = tokens;
  call.y = y;
  call.output = bf16_out ? jit::TileOutput::bf16 : jit::TileOutput::f32;
  call.residual = residual;
  run_slices(call);
}

void NmTableLinear::run_slices(const Call& call) const {
  const sparse::NmTableWeights& w = weights_;
  const auto& kernels = kernels_[call.residual != nullptr][static_cast<int>(call.output)];
  constexpr int64_t kGroupsPerCall = jit::kGroupsPerCall;
  const int64_t out = w.out, groups = w.groups(), tokens = call.tokens;
  const int64_t y_elem = call.output == jit::TileOutput::f32    ? 4
                         : call.output == jit::TileOutput::bf16 ? 2
                                                                : 1;
  const int64_t unit_bytes = sparse::nm_table_unit_bytes(w.type);
  const int64_t chunk_units = sparse::nm_table_chunk_units(w.type);
  const int64_t chunks = sparse::ceil_div(w.units, chunk_units);
  const int64_t slices = call.full + (call.short_quarters[0] > 0) + (call.short_quarters[1] > 0);
  const int64_t calls = sparse::ceil_div(groups, kGroupsPerCall);
  // One contiguous range of calls per thread: each thread builds the tables it reads.
  const int64_t parts = std::min<int64_t>(arena_->max_concurrency(), calls);
  auto* const y_bytes = static_cast<uint8_t*>(call.y);
  parallel_ranges(*arena_, parts, [&](int64_t p0, int64_t p1) {
    // A chunk's table is rebuilt for every slice; measured on Zen 4, blocking the thread's rows
    // (rebuilding it per block, to keep the partial sums in L2) gained nothing.
    thread_local AlignedVector<uint8_t> table, partial;
    alignas(64) uint8_t stage[jit::kStageBytes + jit::kScratchBytes];
    const int64_t c0 = calls * p0 / parts, c1 = calls * p1 / parts;
    table.resize(static_cast<size_t>(chunk_units * unit_bytes));
    partial.resize(static_cast<size_t>((c1 - c0) * kGroupsPerCall * kPartialBytesPerGroup));
    jit::BlockTileArgs a{};
    a.inv_y_scale = call.inv_y_scale;
    a.stage = stage;
    a.x = table.data();
    a.y_stride = out * y_elem;
    a.residual_stride = out * static_cast<int64_t>(sizeof(float));
    for (int64_t s = 0; s < slices; ++s) {
      int64_t t0 = s * sparse::kNmTableSliceTokens;
      const uint8_t* slice = call.x + s * call.slice_bytes;
      int quarters = 4;
      if (s >= call.full) {  // the short slices (bf16 only): 16 Q tokens of 32 Q bytes a column
        t0 = call.full * sparse::kNmTableSliceTokens;
        slice = call.x + call.full * call.slice_bytes;
        for (int64_t k = 0; k < s - call.full; ++k) {
          t0 += 16 * call.short_quarters[k];
          slice += w.in * 32 * call.short_quarters[k];
        }
        quarters = call.short_quarters[s - call.full];
      }
      const jit::NmTableKernel& kernel = *kernels[quarters_index(quarters)];
      a.x_scale = call.x_scales ? call.x_scales + t0 : nullptr;
      a.valid_tokens = std::min<int64_t>(16 * quarters, tokens - t0);
      for (int64_t k = 0; k < chunks; ++k) {
        a.chunk_begin = k * chunk_units;
        a.chunk_units = std::min(chunk_units, w.units - a.chunk_begin);
        a.chunk_flags = (k == 0 ? jit::kFirstChunk : 0) | (k + 1 == chunks ? jit::kLastChunk : 0);
        build_nm_table(w.type, quarters, slice, w.in, a.chunk_begin, a.chunk_begin + a.chunk_units,
                       table.data());
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t g_begin = c * kGroupsPerCall;
          const int64_t g_end = std::min(groups, g_begin + kGroupsPerCall);
          const int64_t r_begin = g_begin * 4;
          a.valid_rows = std::min(out, g_end * 4) - r_begin;
          a.group_begin = w.group_begin.data() + g_begin;
          a.group_end = w.group_begin.data() + g_end;
          a.entries =
              w.entries.data() + w.entry_index(g_begin, a.chunk_begin) * sparse::kNmTableEntryBytes;
          a.w_scale = w.scales.empty() ? nullptr : w.scales.data() + r_begin;
          a.bias = w.bias.data() + r_begin;
          a.compensation = w.compensation.empty() ? nullptr : w.compensation.data() + r_begin;
          a.y = y_bytes + (t0 * out + r_begin) * y_elem;
          a.residual = call.residual ? call.residual + t0 * out + r_begin : nullptr;
          a.partial = partial.data() + (c - c0) * kGroupsPerCall * kPartialBytesPerGroup;
          kernel.run(a);
        }
      }
    }
  });
}

}  // namespace sparq
