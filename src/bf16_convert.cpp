#include "src/bf16_convert.hpp"

#include "jit/cpu_features.hpp"
#include "sparse/bf16.hpp"

namespace sparq {

void convert_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  if (jit::best_float_isa() >= jit::Isa::avx2) {
    detail::convert_to_bf16_avx2(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = sparse::to_bf16(src[i]);
}

}  // namespace sparq
