#include "src/amx_16x1_linear.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"
#include "src/aligned.hpp"
#include "src/f32_activation_layout.hpp"
#include "src/int8_block_linear.hpp"

namespace sparq {

namespace {

constexpr int64_t kChunk = sparse::kChunkTokens;
static_assert(sparse::kBf16SliceTokens == kChunk, "both layouts cut tokens into 64-token chunks");
// Blocks per work item of the tile pass (128 rows).
constexpr int64_t kBlocksPerItem = 8;

// The slot of each token of a chunk (the inverse of sparse::chunk_token, whose order the bf16
// slices share): where its sums (and int8 scale) sit.
const auto kSlotOfToken = [] {
  std::array<int, kChunk> slot{};
  for (int s = 0; s < kChunk; ++s)
    slot[static_cast<size_t>(sparse::chunk_token(sparse::Int8Layout::quads_u8, s))] = s;
  return slot;
}();

bool amx_with(bool amx_kind) {
  const jit::CpuFeatures& f = jit::cpu_features();
  return f.amx_tile && amx_kind && f.avx512bw && jit::amx_allowed();
}

// Per chunk, two passes: the tiles' sums of every block into one [64 token slots][rows] buffer
// (tile_pass(chunk, first range, end range, sums)), then a whole y row at a time (finish(chunk,
// token, slot's sums row)). Written straight to y by blocks, the 64 tokens' rows of a block
// range (out = 3072 fp32: rows 12 KiB apart, all in the same few L1 sets) missed on every store
// and took most of the layer's time. The buffer's rows are padded by one line so that they, too,
// spread over the sets; one chunk's buffer stays in L2.
template <typename Sum, typename TilePass, typename Finish>
void two_passes(tbb::task_arena& arena, const sparse::Amx16x1Weights& w, int64_t tokens,
                const TilePass& tile_pass, const Finish& finish) {
  const int64_t chunks = sparse::ceil_div(tokens, kChunk);
  const int64_t ranges = sparse::ceil_div(w.blocks(), kBlocksPerItem);
  const int64_t sums_row = w.blocks() * sparse::kAmxBlockRows + 16;
  const auto sized = [&](AlignedVector<Sum>& sums) {
    const auto needed = static_cast<size_t>(kChunk * sums_row);
    if (sums.size() < needed) sums.resize(needed);
    return sums.data();
  };
  // Two buffers per thread: one a task uses from start to end, and one the calling thread holds
  // while it waits for the tasks (and may run tasks of another call meanwhile, with the first).
  const auto task_buffer = [&] {
    thread_local AlignedVector<Sum> sums;
    return sized(sums);
  };
  const auto caller_buffer = [&] {
    thread_local AlignedVector<Sum> sums;
    return sized(sums);
  };
  const auto chunk_tokens = [&](int64_t chunk, Sum* sums, int64_t i0, int64_t i1) {
    for (int64_t t = chunk * kChunk + i0; t < chunk * kChunk + i1; ++t)
      finish(chunk, t, sums + kSlotOfToken[t % kChunk] * sums_row);
  };
  const auto chunk_end = [&](int64_t chunk) { return std::min(tokens - chunk * kChunk, kChunk); };
  if (chunks >= arena.max_concurrency()) {
    // A chunk per thread at a time, both passes on that thread: one parallel region per call.
    parallel_ranges(arena, chunks, [&](int64_t c0, int64_t c1) {
      Sum* sums = task_buffer();
      for (int64_t chunk = c0; chunk < c1; ++chunk) {
        tile_pass(chunk, 0, ranges, sums, sums_row);
        chunk_tokens(chunk, sums, 0, chunk_end(chunk));
      }
    });
    return;
  }
  // Fewer chunks than threads: each chunk's block ranges, then its tokens, spread over them.
  Sum* const sums = caller_buffer();
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    parallel_ranges(arena, ranges,
                    [&](int64_t r0, int64_t r1) { tile_pass(chunk, r0, r1, sums, sums_row); });
    parallel_ranges(arena, chunk_end(chunk),
                    [&](int64_t i0, int64_t i1) { chunk_tokens(chunk, sums, i0, i1); });
  }
}

// Runs sums_of(weights, chunk data, b0, b1, sums, sums_row) over the ranges [r0, r1).
template <typename Sum, typename SumsOf>
auto ranges_of(const sparse::Amx16x1Weights& w, const uint8_t* x, int64_t chunk_bytes,
               SumsOf sums_of) {
  return [&w, x, chunk_bytes, sums_of](int64_t chunk, int64_t r0, int64_t r1, Sum* sums,
                                       int64_t sums_row) {
    for (int64_t range = r0; range < r1; ++range) {
      const int64_t b0 = range * kBlocksPerItem, b1 = std::min(w.blocks(), b0 + kBlocksPerItem);
      sums_of(w, x + chunk * chunk_bytes, b0, b1, sums + b0 * sparse::kAmxBlockRows, sums_row);
    }
  };
}

}  // namespace

// ---- int8 ------------------------------------------------------------------------------------

bool Int8Amx16x1Linear::available() { return amx_with(jit::cpu_features().amx_int8); }

Int8Amx16x1Linear::Int8Amx16x1Linear(const int8_t* wq, const float* w_scale, const float* bias,
                                     int64_t out, int64_t in, jit::PostOps post_ops,
                                     PoolRef threads)
    : weights_(sparse::pack_int8_16x1_amx(wq, w_scale, bias, out, in)),
      post_ops_(post_ops),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  if (!available())
    throw NotSupported(
        "the int8 16x1 AMX kernel needs AMX-INT8 and AVX-512 BW (and SPARQ_MAX_ISA unset or amx)");
  for (int residual = 0; residual < 2; ++residual)
    for (jit::TileOutput output :
         {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
      row_epilogues_[residual][static_cast<int>(output)] =
          jit::row_epilogue({jit::best_int8_isa(), post_ops_.activation,
                             post_ops_.operand_for(residual == 1), output, false, true});
}

void Int8Amx16x1Linear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  quantize_block_layout(x, tokens, weights_.in, sparse::Int8Layout::quads_u8, *arena_, q);
}

bool Int8Amx16x1Linear::reads(const QuantizedInput::Impl& q) const {
  return q.form == QuantizedInput::Impl::Form::block_layout &&
         q.layout == sparse::Int8Layout::quads_u8 && q.in == weights_.in;
}

void Int8Amx16x1Linear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                            const float* residual, bool bf16_out) const {
  const sparse::Amx16x1Weights& w = weights_;
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  const jit::TileOutput output = y_scale > 0.0f ? jit::TileOutput::s8
                                 : bf16_out     ? jit::TileOutput::bf16
                                                : jit::TileOutput::f32;
  const jit::RowEpilogueKey key{jit::Isa::reference,
                                post_ops_.activation,
                                post_ops_.operand_for(residual != nullptr),
                                output,
                                false,
                                true};
  const jit::RowEpilogue* epilogue =
      row_epilogues_[residual != nullptr][static_cast<int>(output)].get();
  const int64_t y_elem = jit::output_bytes(output);
  const float inv_y_scale = y_scale > 0.0f ? 1.0f / y_scale : 0.0f;
  two_passes<int32_t>(
      *arena_, w, q.tokens,
      ranges_of<int32_t>(w, q.x.data(), w.in * kChunk, detail::int8_16x1_amx_sums),
      [&](int64_t chunk, int64_t t, const int32_t* sums) {
        const float x_scale =
            q.scales[static_cast<size_t>(chunk * kChunk + kSlotOfToken[t % kChunk])];
        jit::apply_row_epilogue(epilogue, key, sums, x_scale, w.scales.data(), w.bias.data(),
                                residual ? residual + t * w.out : nullptr,
                                static_cast<uint8_t*>(y) + t * w.out * y_elem, w.out, inv_y_scale,
                                w.compensation.data());
      });
}

// ---- bf16 ------------------------------------------------------------------------------------

bool Bf16Amx16x1Linear::available() { return amx_with(jit::cpu_features().amx_bf16); }

Bf16Amx16x1Linear::Bf16Amx16x1Linear(const float* w, const float* bias, int64_t out, int64_t in,
                                     jit::PostOps post_ops, PoolRef threads)
    : weights_(sparse::pack_bf16_16x1_amx(w, bias, out, in)),
      post_ops_(post_ops),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  if (!available())
    throw NotSupported(
        "the bf16 16x1 AMX kernel needs AMX-BF16 and AVX-512 BW (and SPARQ_MAX_ISA unset or amx)");
  for (int residual = 0; residual < 2; ++residual)
    for (int bf16_out = 0; bf16_out < 2; ++bf16_out)
      row_epilogues_[residual][bf16_out] = jit::row_epilogue(
          {jit::best_float_isa(), post_ops_.activation, post_ops_.operand_for(residual == 1),
           bf16_out ? jit::TileOutput::bf16 : jit::TileOutput::f32, true, false});
}

void Bf16Amx16x1Linear::run(const float* x, int64_t tokens, void* y, const float* residual,
                            bool bf16_out) const {
  const sparse::Amx16x1Weights& w = weights_;
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  // Per calling thread, reused across calls: the hot path allocates only when it grows.
  thread_local AlignedVector<uint16_t> x_layout;
  x_layout.resize(static_cast<size_t>(sparse::bf16_activation_elements(tokens, w.in)));
  uint16_t* const laid_out = x_layout.data();
  parallel_ranges(*arena_, sparse::ceil_div(tokens, kChunk), [&](int64_t c0, int64_t c1) {
    const int64_t t0 = c0 * kChunk, t1 = std::min(tokens, c1 * kChunk);
    layout_bf16_activations(x + t0 * w.in, t1 - t0, w.in, laid_out + t0 * w.in);
  });
  const jit::RowEpilogueKey key{jit::Isa::reference,
                                post_ops_.activation,
                                post_ops_.operand_for(residual != nullptr),
                                bf16_out ? jit::TileOutput::bf16 : jit::TileOutput::f32,
                                true,
                                false};
  const jit::RowEpilogue* epilogue = row_epilogues_[residual != nullptr][bf16_out].get();
  const int64_t y_elem = bf16_out ? 2 : 4;
  two_passes<float>(*arena_, w, tokens,
                    ranges_of<float>(w, reinterpret_cast<const uint8_t*>(laid_out),
                                     w.in * sparse::kBf16ColumnBytes, detail::bf16_16x1_amx_sums),
                    [&](int64_t, int64_t t, const float* sums) {
                      jit::apply_row_epilogue(epilogue, key, sums, 1.0f, nullptr, w.bias.data(),
                                              residual ? residual + t * w.out : nullptr,
                                              static_cast<uint8_t*>(y) + t * w.out * y_elem, w.out,
                                              0.0f);
                    });
}

}  // namespace sparq
