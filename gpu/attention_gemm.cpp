#include "gpu/attention_gemm.hpp"

#include <cmath>

#include "gpu/context.hpp"
#include "gpu/encoder_kernels.hpp"

namespace sparq::gpu {

int64_t gemm_attention_scratch_bytes(int64_t batch, int64_t seq, int64_t heads) {
  return batch * heads * seq * seq * static_cast<int64_t>(sizeof(float) + 2);
}

void gemm_attention(int device, const void* qkv, const int32_t* lengths_d, const int64_t* lengths_h,
                    int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, void* ctx, Elem e,
                    cudaStream_t stream) {
  const int64_t hidden = heads * head_dim, ld_qkv = 3 * hidden;
  const int64_t per_sequence = heads * seq * seq;
  StreamScratch scores(static_cast<size_t>(batch * per_sequence) * sizeof(float), stream);
  StreamScratch probs(static_cast<size_t>(batch * per_sequence) * 2, stream);
  const cudaDataType type = e == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF;
  const size_t elem_bytes = 2;
  const auto* base = static_cast<const unsigned char*>(qkv);
  Context& context = Context::get(device);
  const Context::StreamLock on_stream(context, stream);
  cublasHandle_t handle = context.blas;
  // Column-major views (cuBLAS): a head's queries / keys / values are [d x seq] matrices with
  // leading dimension 3 hidden (consecutive positions are rows of qkv), heads d elements apart.
  // scores (col-major [seq_k x seq_q], ld seq) = K^T Q: row-major [query][key].
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim)), zero = 0.0f, one = 1.0f;
  for (int64_t b = 0; b < batch; ++b) {
    const int len = static_cast<int>(lengths_h[b]);
    if (len == 0) continue;  // the softmax writes this sequence's probabilities as zeros
    const unsigned char* q = base + static_cast<size_t>(b * seq * ld_qkv) * elem_bytes;
    const unsigned char* k = q + static_cast<size_t>(hidden) * elem_bytes;
    // Only the real keys and queries (len x len); the softmax masks the rest of each row.
    check_cublas(
        cublasGemmStridedBatchedEx(
            handle, CUBLAS_OP_T, CUBLAS_OP_N, len, len, static_cast<int>(head_dim), &scale, k, type,
            static_cast<int>(ld_qkv), head_dim, q, type, static_cast<int>(ld_qkv), head_dim, &zero,
            scores.get<float>() + b * per_sequence, CUDA_R_32F, static_cast<int>(seq), seq * seq,
            static_cast<int>(heads), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (attention scores)");
  }
  masked_softmax(scores.get<float>(), lengths_d, batch, heads, seq, probs.get(), e, stream);
  // ctx (col-major [d x seq_q], ld hidden) = V P_cm, P_cm the row-major probabilities seen as
  // col-major [seq_k x seq_q] (ld seq). Padded query columns of P are zero, so their context rows
  // are too.
  for (int64_t b = 0; b < batch; ++b) {
    const int len = static_cast<int>(lengths_h[b]);
    auto* out =
        static_cast<unsigned char*>(ctx) + static_cast<size_t>(b * seq * hidden) * elem_bytes;
    if (len == 0) {
      check_cuda(cudaMemsetAsync(out, 0, static_cast<size_t>(seq * hidden) * elem_bytes, stream),
                 "cudaMemsetAsync (empty sequence)");
      continue;
    }
    const unsigned char* v = base + static_cast<size_t>(b * seq * ld_qkv + 2 * hidden) * elem_bytes;
    const unsigned char* p =
        static_cast<const unsigned char*>(probs.get()) + static_cast<size_t>(b * per_sequence) * 2;
    // k = len: padded keys never enter the sum (their values are not even read).
    check_cublas(
        cublasGemmStridedBatchedEx(
            handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(head_dim), static_cast<int>(seq),
            len, &one, v, type, static_cast<int>(ld_qkv), head_dim, p, type, static_cast<int>(seq),
            seq * seq, &zero, out, type, static_cast<int>(hidden), head_dim,
            static_cast<int>(heads), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (attention context)");
  }
}

}  // namespace sparq::gpu
