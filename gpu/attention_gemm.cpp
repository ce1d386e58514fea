#include "gpu/attention_gemm.hpp"

#include <algorithm>
#include <cmath>

#include "gpu/context.hpp"
#include "gpu/encoder_kernels.hpp"

namespace sparq::gpu {
namespace {

// One strided-batched GEMM of each kind over `count` (sequence, head) pairs that sit a constant
// stride apart. Column-major views (cuBLAS): a head's queries / keys / values are [d x seq]
// matrices with leading dimension 3 hidden (consecutive positions are rows of qkv).
struct AttentionGemms {
  cublasHandle_t handle;
  cudaDataType type;
  int64_t seq, head_dim, ld_qkv, hidden;
  float scale;

  // scores (col-major [seq_k x seq_q], ld seq) = K^T Q: row-major [query][key], for the first
  // `len` keys and queries (the softmax masks the rest of each row and reads no further).
  void scores(const void* k, const void* q, int64_t qk_stride, int len, float* s, int64_t s_stride,
              int64_t count) const {
    const float zero = 0.0f;
    check_cublas(
        cublasGemmStridedBatchedEx(
            handle, CUBLAS_OP_T, CUBLAS_OP_N, len, len, static_cast<int>(head_dim), &scale, k, type,
            static_cast<int>(ld_qkv), qk_stride, q, type, static_cast<int>(ld_qkv), qk_stride,
            &zero, s, CUDA_R_32F, static_cast<int>(seq), s_stride, static_cast<int>(count),
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (attention scores)");
  }

  // ctx (col-major [d x seq_q], ld hidden) = V P_cm, P_cm the row-major probabilities seen as
  // col-major [seq_k x seq_q] (ld seq), summing over the first `len` keys. Padded query columns
  // of P are zero, so their context rows are too.
  void context(const void* v, int64_t v_stride, const void* p, int64_t p_stride, int len, void* out,
               int64_t out_stride, int64_t count) const {
    const float one = 1.0f, zero = 0.0f;
    check_cublas(
        cublasGemmStridedBatchedEx(
            handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(head_dim), static_cast<int>(seq),
            len, &one, v, type, static_cast<int>(ld_qkv), v_stride, p, type, static_cast<int>(seq),
            p_stride, &zero, out, type, static_cast<int>(hidden), out_stride,
            static_cast<int>(count), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx (attention context)");
  }
};

}  // namespace

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
  const size_t elem_bytes = 2;
  const auto* base = static_cast<const unsigned char*>(qkv);
  auto* out = static_cast<unsigned char*>(ctx);
  const auto* p = static_cast<const unsigned char*>(probs.get());
  Context& context = Context::get(device);
  const Context::StreamLock on_stream(context, stream);
  const AttentionGemms gemm{
      context.blas, e == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF,     seq, head_dim, ld_qkv,
      hidden,       1.0f / std::sqrt(static_cast<float>(head_dim))};
  const auto bytes = [&](int64_t elements) { return static_cast<size_t>(elements) * elem_bytes; };
  // Each GEMM call costs a launch, so the loop runs over the smaller of batch and heads: per
  // sequence (all heads of it in one call, exactly its length), or per head (that head of every
  // sequence in one call, up to the longest length: the softmax zeroes the probabilities of
  // shorter sequences' padded keys, so those keys add 0 x a finite value).
  if (batch <= heads) {
    for (int64_t b = 0; b < batch; ++b) {
      const int len = static_cast<int>(lengths_h[b]);
      if (len == 0) continue;  // the softmax writes this sequence's probabilities as zeros
      const unsigned char* q = base + bytes(b * seq * ld_qkv);
      gemm.scores(q + bytes(hidden), q, head_dim, len, scores.get<float>() + b * per_sequence,
                  seq * seq, heads);
    }
  } else {
    const int longest = static_cast<int>(*std::max_element(lengths_h, lengths_h + batch));
    for (int64_t h = 0; longest > 0 && h < heads; ++h) {
      const unsigned char* q = base + bytes(h * head_dim);
      gemm.scores(q + bytes(hidden), q, seq * ld_qkv, longest, scores.get<float>() + h * seq * seq,
                  per_sequence, batch);
    }
  }
  masked_softmax(scores.get<float>(), lengths_d, batch, heads, seq, probs.get(), e, stream);
  if (batch <= heads) {
    for (int64_t b = 0; b < batch; ++b) {
      const int len = static_cast<int>(lengths_h[b]);
      unsigned char* o = out + bytes(b * seq * hidden);
      if (len == 0) {
        check_cuda(cudaMemsetAsync(o, 0, bytes(seq * hidden), stream),
                   "cudaMemsetAsync (empty sequence)");
        continue;
      }
      // k = len: padded keys never enter the sum (their values are not even read).
      gemm.context(base + bytes(b * seq * ld_qkv + 2 * hidden), head_dim,
                   p + bytes(b * per_sequence), seq * seq, len, o, head_dim, heads);
    }
  } else {
    const int longest = static_cast<int>(*std::max_element(lengths_h, lengths_h + batch));
    if (longest == 0) {
      check_cuda(cudaMemsetAsync(out, 0, bytes(batch * seq * hidden), stream),
                 "cudaMemsetAsync (empty batch)");
      return;
    }
    for (int64_t h = 0; h < heads; ++h)
      gemm.context(base + bytes(2 * hidden + h * head_dim), seq * ld_qkv, p + bytes(h * seq * seq),
                   per_sequence, longest, out + bytes(h * head_dim), seq * hidden, batch);
  }
}

}  // namespace sparq::gpu
