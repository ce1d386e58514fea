#include "src/input_list.hpp"

#include "jit/cpu_features.hpp"
#include "sparse/bf16.hpp"

namespace sparq {

NonzeroList list_nonzero_s8(const int8_t* s8, int64_t in, int32_t* columns, int8_t* values) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    return detail::list_nonzero_s8_avx512(s8, in, columns, values);
  return detail::list_nonzero_s8_portable(s8, in, columns, values);
}

int64_t list_nonzero_bf16(const float* x, int64_t in, int32_t* columns, float* values) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    return detail::list_nonzero_bf16_avx512(x, in, columns, values);
  return detail::list_nonzero_bf16_portable(x, in, columns, values);
}

namespace detail {

NonzeroList list_nonzero_s8_portable(const int8_t* s8, int64_t in, int32_t* columns,
                                     int8_t* values) {
  int64_t n = 0;
  int32_t sum = 0;
  for (int64_t c = 0; c < in; ++c) {
    sum += s8[c];
    if (s8[c] == 0) continue;
    columns[n] = static_cast<int32_t>(c);
    values[n] = s8[c];
    ++n;
  }
  return {n, sum};
}

int64_t list_nonzero_bf16_portable(const float* x, int64_t in, int32_t* columns, float* values) {
  int64_t n = 0;
  for (int64_t c = 0; c < in; ++c) {
    const float v = sparse::from_bf16(sparse::to_bf16(x[c]));
    if (v == 0.0f) continue;
    columns[n] = static_cast<int32_t>(c);
    values[n] = v;
    ++n;
  }
  return n;
}

}  // namespace detail
}  // namespace sparq
