// fp32 -> bf16 conversion of outputs: round to nearest even as sparse::to_bf16 (NaNs stay quiet
// NaNs), 16 values per step with AVX-512F or 8 with AVX2 when the CPU has them.
#pragma once

#include <cstdint>

namespace sparq {

void convert_to_bf16(const float* src, uint16_t* dst, int64_t n);
// The same for `rows` rows of `cols` values, read with a stride of src_stride floats and written
// with one of dst_stride values (a strided block: one head's columns of a stacked buffer).
void convert_rows_to_bf16(const float* src, int64_t src_stride, uint16_t* dst, int64_t dst_stride,
                          int64_t rows, int64_t cols);

namespace detail {
void convert_to_bf16_avx2(const float* src, uint16_t* dst, int64_t n);
void convert_to_bf16_avx512(const float* src, uint16_t* dst, int64_t n);
}  // namespace detail

}  // namespace sparq
