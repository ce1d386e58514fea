// The list of a token's non-zero inputs that the sparse-input decode kernels walk: the columns of
// the non-zero entries, in order, and their values. Built once per token and layer call, on the
// caller's thread while the layer's other threads wait, so it is vectorized where the CPU allows.
#pragma once

#include <cstdint>

namespace sparq {

struct NonzeroList {
  int64_t count;  // non-zero entries listed
  int32_t sum;    // the sum of all `in` values (zeros included: they add nothing)
};

// s8[0, in) -> columns[0, count) and values[0, count) (buffers of `in` entries; nothing past
// `count` is written).
NonzeroList list_nonzero_s8(const int8_t* s8, int64_t in, int32_t* columns, int8_t* values);

// x[0, in) rounded to bf16 (sparse::to_bf16) -> the columns and values (as floats) of the entries
// that are not zero after rounding (NaNs are listed); returns the count. Buffers as above.
int64_t list_nonzero_bf16(const float* x, int64_t in, int32_t* columns, float* values);

namespace detail {
NonzeroList list_nonzero_s8_portable(const int8_t* s8, int64_t in, int32_t* columns,
                                     int8_t* values);
int64_t list_nonzero_bf16_portable(const float* x, int64_t in, int32_t* columns, float* values);
// AVX-512 F/BW/VL.
NonzeroList list_nonzero_s8_avx512(const int8_t* s8, int64_t in, int32_t* columns, int8_t* values);
int64_t list_nonzero_bf16_avx512(const float* x, int64_t in, int32_t* columns, float* values);
}  // namespace detail

}  // namespace sparq
