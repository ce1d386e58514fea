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

// The same with both products on bf16 operands: q, k, v and the softmax's probabilities rounded
// to bf16 (to nearest even, as sparse::to_bf16), products accumulated in fp32, the softmax in
// fp32. On AMX tiles where bf16_attention_runs_on_amx(d), else on AVX512_BF16 (vdpbf16ps: twice
// the multiply-adds of an fp32 FMA per instruction) where bf16_attention_runs_natively(d), else on
// the portable twin (slow: for tests and odd shapes).
void attention_head_bf16(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                         int64_t stride, float* ctx, int64_t ctx_stride,
                         std::vector<float>& scratch);
// Whether attention_head_bf16 runs on AVX512_BF16 here for head dimension d (even d of at most
// kMaxBf16HeadDim, a CPU with AVX512_BF16 and the float kernels at avx512 under SPARQ_MAX_ISA).
inline constexpr int64_t kMaxBf16HeadDim = 1024;
bool bf16_attention_runs_natively(int64_t d);
// Whether it runs its two products on AMX tiles (bf16_attention_runs_natively and AMX-BF16 with
// the tile data granted by the OS): on a Xeon with AMX 250-278 us a layer of BERT-base at seq
// 128 against 558-592 on vdpbf16ps and 406-449 in fp32 (docs/benchmarks-amx.md).
bool bf16_attention_runs_on_amx(int64_t d);
// attention_head_bf16 on AMX tiles from q, k, v already rounded to bf16 (rows `stride` elements
// apart, as a projection that writes bf16 leaves them): the same result as the fp32 entry given
// their bf16 values, without converting them per head. Only where bf16_attention_runs_on_amx(d).
void attention_head_bf16_amx(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t len,
                             int64_t d, int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch);

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

void attention_head_bf16_portable(const float* q, const float* k, const float* v, int64_t len,
                                  int64_t d, int64_t stride, float* ctx, int64_t ctx_stride,
                                  std::vector<float>& scratch);
void attention_head_bf16_avx512(const float* q, const float* k, const float* v, int64_t len,
                                int64_t d, int64_t stride, float* ctx, int64_t ctx_stride,
                                std::vector<float>& scratch);
// Both products on AMX tiles (rows and the head dimension padded to 32), the softmax on AVX-512.
void attention_head_bf16_amx(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                             int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch);

// Row-wise softmax of scores [rows x width] (row stride width; width a multiple of 8, >= len)
// over the first len columns: p = exp((s - max) scale), columns len.. set to 0, and inv[i] =
// 1 / (row i's sum). AVX2.
void softmax_rows_avx2(float* scores, int64_t rows, int64_t len, int64_t width, float scale,
                       float* inv);
// The same on AVX-512F (16 lanes, masked tails).
void softmax_rows_avx512(float* scores, int64_t rows, int64_t len, int64_t width, float scale,
                         float* inv);

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
