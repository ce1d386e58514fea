#include "models/layer_norm.hpp"

#include <cmath>

#include "jit/cpu_features.hpp"

namespace sparq::models {

void layer_norm_rows(float* x, int64_t rows, int64_t width, const float* gamma, const float* beta,
                     double eps) {
  if (jit::best_float_isa() >= jit::Isa::avx512)
    detail::layer_norm_rows_avx512(x, rows, width, gamma, beta, eps);
  else if (jit::best_float_isa() >= jit::Isa::avx2)
    detail::layer_norm_rows_avx2(x, rows, width, gamma, beta, eps);
  else
    detail::layer_norm_rows_portable(x, rows, width, gamma, beta, eps);
}

namespace detail {

void layer_norm_rows_portable(float* x, int64_t rows, int64_t width, const float* gamma,
                              const float* beta, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * width;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < width; ++i) mean += v[i];
    mean /= static_cast<double>(width);
    for (int64_t i = 0; i < width; ++i) var += (v[i] - mean) * (v[i] - mean);
    const double inv = 1.0 / std::sqrt(var / static_cast<double>(width) + eps);
    for (int64_t i = 0; i < width; ++i)
      v[i] = static_cast<float>((v[i] - mean) * inv) * gamma[i] + beta[i];
  }
}

}  // namespace detail
}  // namespace sparq::models
