// The element-wise stage of a Llama block outside its projections: RMSNorm (the SwiGLU product is
// the gate projection's epilogue, LinearOptions::operand multiply). The AVX-512 and AVX2 variants
// (target attributes, called after a CPUID check) are what the decoder runs; the portable one is
// their reference twin.
#pragma once

#include <cstdint>

namespace sparq::models {

// y = x / sqrt(mean(x^2) + eps) * w per row of `width` (sums of squares in double).
void rms_norm_rows(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                   float* y);

namespace detail {
void rms_norm_rows_portable(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                            float* y);
void rms_norm_rows_avx2(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                        float* y);
void rms_norm_rows_avx512(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                          float* y);
}  // namespace detail

}  // namespace sparq::models
