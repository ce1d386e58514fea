#include "src/int8_nm_prefill_linear.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "sparse/checks.hpp"
#include "src/activation_quant.hpp"
#include "src/decode_groups.hpp"

namespace sparq {

Int8NmPrefillLinear::Int8NmPrefillLinear(const int8_t* wq, const float* w_scale, const float* bias,
                                         int64_t out, int64_t in, jit::PostOps post_ops,
                                         PoolRef threads)
    : weights_(sparse::pack_int8_2of4_prefill(wq, w_scale, bias, out, in)),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  for (int t = 1; t <= jit::kNmPrefillTileTokens; ++t)
    for (int residual = 0; residual < 2; ++residual)
      for (int int8_out = 0; int8_out < 2; ++int8_out)
        kernels_[t - 1][residual][int8_out] = jit::int8_nm_prefill_kernel(
            {t, post_ops.activation, post_ops.operand_for(residual == 1), int8_out == 1});
}

void Int8NmPrefillLinear::quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = weights_.in, windows = weights_.windows;
  constexpr int64_t kWindow = sparse::kNmDecodeWindow;
  q.reserve(windows * tokens * kWindow, tokens);
  thread_local std::vector<int8_t> s8;
  s8.resize(static_cast<size_t>(tokens * in));
  quantize_rows(x, tokens, in, s8.data(), q.scales.data());
  // u8 = q + 128 by window: each window's 8 bytes of every token together; the padding past `in`
  // is 0 (its weights are zero).
  const int64_t full = in / kWindow;
  for (int64_t t = 0; t < tokens; ++t) {
    const int8_t* src = s8.data() + t * in;
    uint8_t* dst = q.x.data() + t * kWindow;
    for (int64_t w = 0; w < full; ++w) {
      uint64_t v;
      std::memcpy(&v, src + w * kWindow, kWindow);
      v ^= 0x8080808080808080ull;  // + 128 on every byte
      std::memcpy(dst + w * tokens * kWindow, &v, kWindow);
    }
    if (full < windows) {
      uint8_t* last = dst + full * tokens * kWindow;
      std::memset(last, 0, kWindow);
      for (int64_t i = full * kWindow; i < in; ++i)
        last[i - full * kWindow] = static_cast<uint8_t>(src[i] + 128);
    }
  }
  q.form = QuantizedInput::Impl::Form::nm_u8_windows;
  q.tokens = tokens;
  q.in = in;
}

bool Int8NmPrefillLinear::reads(const QuantizedInput::Impl& q) const {
  return q.form == QuantizedInput::Impl::Form::nm_u8_windows && q.in == weights_.in;
}

void Int8NmPrefillLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                              const float* residual, bool bf16_out) const {
  const sparse::Int8NmPrefillWeights& w = weights_;
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  constexpr int64_t kRows = sparse::kNmDecodeRows, kTile = jit::kNmPrefillTileTokens;
  constexpr int64_t kEntry = sparse::kNmPrefillEntryBytes;
  const bool int8_out = y_scale > 0.0f && !bf16_out;
  const int64_t out = w.out, tokens = q.tokens, tiles = sparse::ceil_div(tokens, kTile);
  const int64_t pairs = sparse::ceil_div(w.groups, 2);
  // Pairs of groups per thread; where there are too few to share (a narrow layer), token tiles
  // are shared too.
  const int threads = arena_->max_concurrency();
  const int64_t tile_parts = std::min(tiles, sparse::ceil_div(2 * threads, pairs));
  parallel_ranges(*arena_, pairs * tile_parts, [&](int64_t i0, int64_t i1) {
    jit::NmPrefillArgs a{};
    a.x_window_stride = tokens * sparse::kNmDecodeWindow;
    a.windows = w.windows;
    a.inv_y_scale = int8_out ? 1.0f / y_scale : 0.0f;
    auto run_tile = [&](int64_t pair, int64_t tile) {
      const int64_t g0 = 2 * pair, g1 = std::min(w.groups, g0 + 2);
      const int64_t t0 = tile * kTile, nt = std::min(kTile, tokens - t0);
      const auto& kernel = *kernels_[nt - 1][residual != nullptr][int8_out];
      a.x = q.x.data() + t0 * sparse::kNmDecodeWindow;
      a.x_scale = q.scales.data() + t0;
      const DecodeStep step{out, t0, nt, y, bf16_out ? 2 : (int8_out ? 1 : 4), bf16_out, residual};
      run_decode_groups<kTile>(step, g0, g1,
                               [&](int64_t b, int64_t e, void* y_at, int64_t y_stride,
                                   const float* res_at, int64_t res_stride) {
                                 a.entries = w.entries.data() + b * w.windows * kEntry;
                                 a.groups = e - b;
                                 a.w_scale = w.scales.data() + b * kRows;
                                 a.bias = w.bias.data() + b * kRows;
                                 a.compensation = w.compensation.data() + b * kRows;
                                 a.y = y_at;
                                 a.y_stride = y_stride;
                                 a.residual = res_at;
                                 a.residual_stride = res_stride;
                                 kernel.run(a);
                               });
    };
    if (tile_parts == 1) {
      // Blocks of pairs whose weights (~256 KiB) stay in L2 while every token tile runs over
      // them, tiles outside: a tile's outputs of the block's rows are then written together
      // rather than two 64-byte lines per call across the whole layer. Measured on Zen 4 (128
      // tokens, one thread, against one pair at a time): 8192 x 512 1.07x -> 1.35x oneDNN,
      // 3072 x 768 1.34x -> 1.44x, 16384 x 1024 1.25x -> 1.38x (8 pairs); 4096 x 4096 runs 2
      // pairs (1.36x; 8 pairs, 1 MiB, fell to 1.24x).
      const int64_t block = std::max<int64_t>(1, (256 << 10) / (w.windows * 2 * kEntry));
      for (int64_t p0 = i0; p0 < i1; p0 += block) {
        const int64_t p1 = std::min(i1, p0 + block);
        for (int64_t tile = 0; tile < tiles; ++tile)
          for (int64_t pair = p0; pair < p1; ++pair) run_tile(pair, tile);
      }
      return;
    }
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t pair = i / tile_parts, part = i % tile_parts;
      const int64_t tile0 = tiles * part / tile_parts, tile1 = tiles * (part + 1) / tile_parts;
      for (int64_t tile = tile0; tile < tile1; ++tile) run_tile(pair, tile);
    }
  });
}

}  // namespace sparq
