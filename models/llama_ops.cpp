#include "models/llama_ops.hpp"

#include <cmath>

#include "jit/cpu_features.hpp"

namespace sparq::models {

void rms_norm_rows(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                   float* y) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    detail::rms_norm_rows_avx512(x, rows, width, w, eps, y);
  else if (jit::best_float_isa() >= jit::Isa::avx2)
    detail::rms_norm_rows_avx2(x, rows, width, w, eps, y);
  else
    detail::rms_norm_rows_portable(x, rows, width, w, eps, y);
}

namespace detail {

void rms_norm_rows_portable(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                            float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* v = x + r * width;
    double ss = 0;
    for (int64_t i = 0; i < width; ++i) ss += double(v[i]) * v[i];
    const auto inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(width) + eps));
    for (int64_t i = 0; i < width; ++i) y[r * width + i] = v[i] * inv * w[i];
  }
}

}  // namespace detail
}  // namespace sparq::models
