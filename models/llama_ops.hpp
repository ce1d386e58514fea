// The element-wise stages of a Llama block, one op each: RMSNorm and the SwiGLU product. The
// AVX-512 and AVX2 variants (target attributes, called after a CPUID check) are what the decoder
// runs; the portable ones are their reference twins.
#pragma once

#include <cstdint>

namespace sparq::models {

// y = x / sqrt(mean(x^2) + eps) * w per row of `width` (sums of squares in double).
void rms_norm_rows(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                   float* y);

// act[i] = silu(gate[i]) * up[i] = gate[i] / (1 + exp(-gate[i])) * up[i], for n elements.
void swiglu(const float* gate, const float* up, int64_t n, float* act);

namespace detail {
void rms_norm_rows_portable(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                            float* y);
void rms_norm_rows_avx2(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                        float* y);
void rms_norm_rows_avx512(const float* x, int64_t rows, int64_t width, const float* w, double eps,
                          float* y);
void swiglu_avx512(const float* gate, const float* up, int64_t n, float* act);
void swiglu_portable(const float* gate, const float* up, int64_t n, float* act);
void swiglu_avx2(const float* gate, const float* up, int64_t n, float* act);
}  // namespace detail

}  // namespace sparq::models
