#include "src/int8_amx_linear.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"
#include "src/aligned.hpp"
#include "src/int8_block_linear.hpp"

namespace sparq {

namespace {
// Blocks per work item of the tile pass (128 rows: one range's weights are 8 KiB a group).
constexpr int64_t kBlocksPerItem = 8;

// The slot of each token of a chunk (the inverse of sparse::chunk_token): where its sums and
// scale sit.
const auto kSlotOfToken = [] {
  std::array<int, sparse::kChunkTokens> slot{};
  for (int s = 0; s < sparse::kChunkTokens; ++s)
    slot[static_cast<size_t>(sparse::chunk_token(sparse::Int8Layout::quads_u8, s))] = s;
  return slot;
}();
}  // namespace

bool Int8Amx16x1Linear::available() {
  const jit::CpuFeatures& f = jit::cpu_features();
  return f.amx_tile && f.amx_int8 && f.avx512bw && jit::amx_allowed();
}

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
  const sparse::Int8Amx16x1Weights& w = weights_;
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
  constexpr int64_t kChunk = sparse::kChunkTokens;
  const int64_t chunks = sparse::ceil_div(q.tokens, kChunk);
  const int64_t ranges = sparse::ceil_div(w.blocks(), kBlocksPerItem);
  const int64_t chunk_bytes = w.in * kChunk;
  // Per chunk, two passes: the tiles' sums of every block into one [64 token slots][rows] buffer,
  // then the row epilogue a whole y row at a time. Written straight to y by blocks, the 64 tokens'
  // rows of a block range (out = 3072 fp32: rows 12 KiB apart, all in the same few L1 sets)
  // missed on every store and took most of the layer's time. The buffer's rows are padded by one
  // line so that they, too, spread over the sets; one chunk's buffer stays in L2.
  const int64_t sums_row = w.blocks() * sparse::kAmxBlockRows + 16;
  // Two buffers per thread: one a task uses from start to end, and one the calling thread holds
  // while it waits for the tasks (and may run tasks of another call meanwhile, with the first).
  const auto sized = [&](AlignedVector<int32_t>& sums) {
    const auto needed = static_cast<size_t>(kChunk * sums_row);
    if (sums.size() < needed) sums.resize(needed);
    return sums.data();
  };
  const auto task_buffer = [&] {
    thread_local AlignedVector<int32_t> sums;
    return sized(sums);
  };
  const auto caller_buffer = [&] {
    thread_local AlignedVector<int32_t> sums;
    return sized(sums);
  };
  const auto tile_pass = [&](const uint8_t* x, int64_t range0, int64_t range1, int32_t* sums) {
    for (int64_t range = range0; range < range1; ++range) {
      const int64_t b0 = range * kBlocksPerItem, b1 = std::min(w.blocks(), b0 + kBlocksPerItem);
      detail::int8_16x1_amx_sums(w, x, b0, b1, sums + b0 * sparse::kAmxBlockRows, sums_row);
    }
  };
  const auto epilogue_pass = [&](int64_t chunk, int64_t t0, int64_t t1, const int32_t* sums) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t slot = kSlotOfToken[t % kChunk];
      jit::apply_row_epilogue(epilogue, key, sums + slot * sums_row,
                              q.scales[static_cast<size_t>(chunk * kChunk + slot)], w.scales.data(),
                              w.bias.data(), residual ? residual + t * w.out : nullptr,
                              static_cast<uint8_t*>(y) + t * w.out * y_elem, w.out, inv_y_scale,
                              w.compensation.data());
    }
  };
  const auto chunk_end = [&](int64_t chunk) { return std::min(q.tokens, (chunk + 1) * kChunk); };
  if (chunks >= arena_->max_concurrency()) {
    // A chunk per thread at a time, both passes on that thread: one parallel region per call.
    parallel_ranges(*arena_, chunks, [&](int64_t c0, int64_t c1) {
      int32_t* sums = task_buffer();
      for (int64_t chunk = c0; chunk < c1; ++chunk) {
        tile_pass(q.x.data() + chunk * chunk_bytes, 0, ranges, sums);
        epilogue_pass(chunk, chunk * kChunk, chunk_end(chunk), sums);
      }
    });
    return;
  }
  // Fewer chunks than threads: each chunk's block ranges, then its tokens, spread over them.
  int32_t* const sums = caller_buffer();
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const uint8_t* x = q.x.data() + chunk * chunk_bytes;
    parallel_ranges(*arena_, ranges, [&](int64_t r0, int64_t r1) { tile_pass(x, r0, r1, sums); });
    parallel_ranges(*arena_, chunk_end(chunk) - chunk * kChunk, [&](int64_t i0, int64_t i1) {
      epilogue_pass(chunk, chunk * kChunk + i0, chunk * kChunk + i1, sums);
    });
  }
}

}  // namespace sparq
