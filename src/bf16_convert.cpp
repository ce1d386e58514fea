#include "src/bf16_convert.hpp"

#include "jit/cpu_features.hpp"
#include "sparse/bf16.hpp"

namespace sparq {

void convert_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  if (jit::best_float_isa() >= jit::Isa::avx512) {
    detail::convert_to_bf16_avx512(src, dst, n);
    return;
  }
  if (jit::best_float_isa() >= jit::Isa::avx2) {
    detail::convert_to_bf16_avx2(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = sparse::to_bf16(src[i]);
}

void convert_rows_to_bf16(const float* src, int64_t src_stride, uint16_t* dst, int64_t dst_stride,
                          int64_t rows, int64_t cols) {
  // The variant is chosen once per block, not per row: rows are often short (64 values).
  void (*const convert)(const float*, uint16_t*, int64_t) =
      jit::best_float_isa() >= jit::Isa::avx512 ? detail::convert_to_bf16_avx512
      : jit::best_float_isa() >= jit::Isa::avx2 ? detail::convert_to_bf16_avx2
                                                : convert_to_bf16;
  for (int64_t r = 0; r < rows; ++r) convert(src + r * src_stride, dst + r * dst_stride, cols);
}

}  // namespace sparq
