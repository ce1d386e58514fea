// fp32 -> bf16 conversion of outputs: round to nearest even as sparse::to_bf16 (NaNs stay quiet
// NaNs), 8 values per step with AVX2 when the CPU has it.
#pragma once

#include <cstdint>

namespace sparq {

void convert_to_bf16(const float* src, uint16_t* dst, int64_t n);

namespace detail {
void convert_to_bf16_avx2(const float* src, uint16_t* dst, int64_t n);
}  // namespace detail

}  // namespace sparq
