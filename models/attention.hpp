// Scaled dot-product attention of one sequence and head, in fp32: q, k, v are [len x d] with row
// stride `stride` (rows of the stacked query/key/value output); ctx [len x d] with row stride
// `ctx_stride`. Only the sequence's real tokens take part (padding is excluded by len). The AVX2
// variant (intrinsics, target attributes, called after a CPUID check) computes q k^T as rows of
// broadcast-multiply-adds against k transposed, the softmax, then p v the same way (the AVX-512
// variant runs the two products on zmm tiles); the portable one is their reference twin.
#pragma once

#include <cstdint>
#include <vector>

namespace sparq::models {

// scratch: reused between calls (grows to len * (len + d) floats).
void attention_head(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                    int64_t stride, float* ctx, int64_t ctx_stride, std::vector<float>& scratch);

namespace detail {
void attention_head_portable(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                             int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch);
void attention_head_avx2(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                         int64_t stride, float* ctx, int64_t ctx_stride,
                         std::vector<float>& scratch);
// The AVX2 variant with its two products on AVX-512F register tiles.
void attention_head_avx512(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                           int64_t stride, float* ctx, int64_t ctx_stride,
                           std::vector<float>& scratch);

// C[m x n] = diag(row_scale) A[m x k] B[k x n] (row_scale may be null) for n a multiple of 8.
using SmallGemm = void (*)(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                           const float* b, int64_t ldb, float* c, int64_t ldc,
                           const float* row_scale);
void small_gemm_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float* c, int64_t ldc, const float* row_scale);
void small_gemm_avx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                       int64_t ldb, float* c, int64_t ldc, const float* row_scale);
}  // namespace detail

}  // namespace sparq::models
