#include "models/prefill_attention.hpp"

#include <algorithm>

#include "jit/cpu_features.hpp"
#include "models/attention.hpp"
#include "sparse/checks.hpp"

namespace sparq::models {
namespace {

// Tokens per block: the AVX-512 tiles' 12 rows (two of the AVX2 tiles' 6).
constexpr int64_t kBlock = 12;

int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

}  // namespace

bool prefill_attention_available(int64_t d) {
  return d > 0 && d % 8 == 0 && jit::best_float_isa() >= jit::Isa::avx2;
}

void transpose_keys(const float* k, int64_t keys, int64_t d, int64_t stride, float* kt,
                    int64_t width) {
  // Blocks of 8 positions x 8 dimensions, so that reads and writes stay within a few lines.
  for (int64_t j0 = 0; j0 < keys; j0 += 8)
    for (int64_t e0 = 0; e0 < d; e0 += 8)
      for (int64_t j = j0; j < std::min(keys, j0 + 8); ++j)
        for (int64_t e = e0; e < std::min(d, e0 + 8); ++e) kt[e * width + j] = k[j * stride + e];
  for (int64_t e = 0; e < d; ++e) std::fill(kt + e * width + keys, kt + (e + 1) * width, 0.0f);
}

void prefill_attention_head(const float* q, int64_t q_stride, const float* kt, int64_t width,
                            const float* v, int64_t first, int64_t tokens, int64_t d, float scale,
                            float* out, int64_t out_stride, std::vector<float>& scratch) {
  sparse::require(prefill_attention_available(d),
                  "prefill_attention_head: needs AVX2 and a head size that is a multiple of 8");
  sparse::require(width % 8 == 0 && width >= first + tokens,
                  "prefill_attention_head: the transposed keys do not cover the prompt");
  const bool avx512 = jit::best_float_isa() >= jit::Isa::avx512;
  const detail::SmallGemm gemm = avx512 ? detail::small_gemm_avx512 : detail::small_gemm_avx2;
  const auto softmax = avx512 ? detail::softmax_rows_avx512 : detail::softmax_rows_avx2;
  scratch.resize(static_cast<size_t>(tokens * (width + 1)));
  float* scores = scratch.data();
  float* inv = scores + tokens * width;
  for (int64_t t0 = 0; t0 < tokens; t0 += kBlock) {
    const int64_t rows = std::min(kBlock, tokens - t0);
    const int64_t visible = first + t0 + rows;  // the block's last token sees this many keys
    const int64_t n = round8(visible);
    float* s = scores + t0 * width;
    gemm(rows, n, d, q + t0 * q_stride, q_stride, kt, width, s, width, nullptr);
    // Each token's softmax over its own positions; the ones after it become zeros up to n.
    for (int64_t r = 0; r < rows; ++r)
      softmax(s + r * width, 1, first + t0 + r + 1, n, scale, inv + t0 + r);
    gemm(rows, d, visible, s, width, v, d, out + t0 * out_stride, out_stride, inv + t0);
  }
}

}  // namespace sparq::models
