#include "src/activation_quant.hpp"

#include <vector>

#include "jit/cpu_features.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"

namespace sparq {

int64_t activation_bytes(sparse::Int8Layout layout, int64_t tokens, int64_t in) {
  return sparse::ceil_div(tokens, sparse::kChunkTokens) * sparse::kChunkTokens * in *
         sparse::x_element_bytes(layout);
}

int64_t activation_scale_count(int64_t tokens) {
  return sparse::ceil_div(tokens, sparse::kChunkTokens) * sparse::kChunkTokens;
}

void quantize_activations(const float* x, int64_t tokens, int64_t in, sparse::Int8Layout layout,
                          uint8_t* xq, float* scales) {
  if (layout == sparse::Int8Layout::quads_u8 && jit::best_float_isa() >= jit::Isa::avx512)
    detail::quantize_activations_avx512(x, tokens, in, xq, scales);
  else if (jit::isa_available(jit::Isa::avx2) && jit::best_int8_isa() >= jit::Isa::avx2)
    detail::quantize_activations_avx2(x, tokens, in, layout, xq, scales);
  else
    detail::quantize_activations_portable(x, tokens, in, layout, xq, scales);
}

void quantize_rows(const float* x, int64_t rows, int64_t cols, int8_t* q, float* scale) {
  if (jit::isa_available(jit::Isa::avx2) && jit::best_int8_isa() >= jit::Isa::avx2)
    detail::quantize_rows_avx2(x, rows, cols, q, scale);
  else
    sparse::quantize_rows(x, rows, cols, q, scale);
}

namespace detail {

void quantize_activations_portable(const float* x, int64_t tokens, int64_t in,
                                   sparse::Int8Layout layout, uint8_t* xq, float* scales) {
  std::vector<int8_t> q(static_cast<size_t>(tokens * in));
  std::vector<float> token_scale(static_cast<size_t>(tokens));
  sparse::quantize_rows(x, tokens, in, q.data(), token_scale.data());
  sparse::layout_activations(q.data(), token_scale.data(), tokens, in, layout, xq, scales);
}

}  // namespace detail
}  // namespace sparq
