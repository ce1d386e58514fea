// LayerNorm over rows, in place: x = (x - mean) / sqrt(var + eps) * gamma + beta per row of
// `width`. The AVX2 and AVX-512 variants (target attributes, called after a CPUID check) sum in
// float lanes, two passes (mean, then squared deviations); the portable twin sums in double.
#pragma once

#include <cstdint>

namespace sparq::models {

void layer_norm_rows(float* x, int64_t rows, int64_t width, const float* gamma, const float* beta,
                     double eps);

namespace detail {
void layer_norm_rows_portable(float* x, int64_t rows, int64_t width, const float* gamma,
                              const float* beta, double eps);
void layer_norm_rows_avx2(float* x, int64_t rows, int64_t width, const float* gamma,
                          const float* beta, double eps);
// The AVX2 variant's passes on AVX-512F (16 lanes, four chains, masked tail).
void layer_norm_rows_avx512(float* x, int64_t rows, int64_t width, const float* gamma,
                            const float* beta, double eps);
}  // namespace detail

}  // namespace sparq::models
