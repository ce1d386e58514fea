#include "gpu/attention_gemm.hpp"

#include <algorithm>
#include <cmath>

#include "gpu/attention_pointers.hpp"
#include "gpu/context.hpp"
#include "gpu/encoder_kernels.hpp"

namespace sparq::gpu {
namespace {

// Rows of the scores and probabilities start on 16-byte boundaries in both types (cuBLAS's
// batched GEMMs want every matrix pointer aligned, and a head's block is seq rows long).
int64_t score_row_stride(int64_t seq) { return (seq + 7) / 8 * 8; }

}  // namespace

int64_t gemm_attention_scratch_bytes(int64_t batch, int64_t seq, int64_t heads) {
  return batch * heads * seq * score_row_stride(seq) * static_cast<int64_t>(sizeof(float) + 2);
}

bool gemm_attention_supports(int64_t head_dim) { return head_dim % 8 == 0; }

void gemm_attention(int device, void* qkv, const int32_t* lengths_d, const int64_t* lengths_h,
                    int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, void* ctx, Elem e,
                    cudaStream_t stream) {
  if (batch == 0) return;
  if (!gemm_attention_supports(head_dim))
    throw NotSupported("gemm_attention: head_dim " + std::to_string(head_dim) +
                       " (a multiple of 8 keeps every head's matrices 16-byte aligned)");
  const int64_t hidden = heads * head_dim, ld_qkv = 3 * hidden, count = batch * heads;
  const int64_t ld_scores = score_row_stride(seq);
  const int longest = static_cast<int>(*std::max_element(lengths_h, lengths_h + batch));
  if (longest == 0) {  // nothing to attend to: every query row is padding
    check_cuda(cudaMemsetAsync(ctx, 0, static_cast<size_t>(batch * seq * hidden) * 2, stream),
               "cudaMemsetAsync (empty batch)");
    return;
  }
  // The context below sums over the first `longest` keys of every sequence, multiplying a shorter
  // one's padded keys by zero probabilities: their values are zeroed so that the sum stays exact
  // whatever the padded positions hold.
  if (std::any_of(lengths_h, lengths_h + batch, [&](int64_t len) { return len < seq; }))
    zero_padded_values(qkv, lengths_d, batch, seq, hidden, stream);
  StreamScratch scores(static_cast<size_t>(count * seq * ld_scores) * sizeof(float), stream);
  StreamScratch probs(static_cast<size_t>(count * seq * ld_scores) * 2, stream);
  StreamScratch pointer_arrays(static_cast<size_t>(6 * count) * sizeof(void*), stream);
  attention_pointers(qkv, scores.get<float>(), probs.get(), ctx, batch, heads, seq, ld_scores,
                     head_dim, pointer_arrays.get<void*>(), stream);
  void* const* p = pointer_arrays.get<void*>();
  const void* const* queries = p;
  const void* const* keys = p + count;
  void* const* head_scores = p + 2 * count;
  const void* const* values = p + 3 * count;
  const void* const* head_probs = p + 4 * count;
  void* const* context_columns = p + 5 * count;

  const cudaDataType type = e == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF;
  Context& context = Context::get(device);
  const Context::StreamLock on_stream(context, stream);
  // One batched GEMM of each kind over every (sequence, head), up to the longest length: every
  // GEMM call costs a launch, and at BERT's sequence lengths each head's product is small.
  // Column-major views (cuBLAS): a head's queries / keys / values are [d x seq] matrices with
  // leading dimension 3 hidden.
  // scores (col-major [seq_k x seq_q], ld ld_scores) = K^T Q: row-major [query][key].
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim)), zero = 0.0f, one = 1.0f;
  check_cublas(
      cublasGemmBatchedEx(context.blas, CUBLAS_OP_T, CUBLAS_OP_N, longest, longest,
                          static_cast<int>(head_dim), &scale, keys, type, static_cast<int>(ld_qkv),
                          queries, type, static_cast<int>(ld_qkv), &zero, head_scores, CUDA_R_32F,
                          static_cast<int>(ld_scores), static_cast<int>(count), CUBLAS_COMPUTE_32F,
                          CUBLAS_GEMM_DEFAULT),
      "cublasGemmBatchedEx (attention scores)");
  masked_softmax(scores.get<float>(), lengths_d, batch, heads, seq, ld_scores, probs.get(), e,
                 stream);
  // ctx (col-major [d x seq_q], ld hidden) = V P_cm, P_cm the row-major probabilities seen as
  // col-major [seq_k x seq_q] (ld ld_scores). Padded query columns of P are zero, so their
  // context rows are too.
  check_cublas(
      cublasGemmBatchedEx(context.blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(head_dim),
                          static_cast<int>(seq), longest, &one, values, type,
                          static_cast<int>(ld_qkv), head_probs, type, static_cast<int>(ld_scores),
                          &zero, context_columns, type, static_cast<int>(hidden),
                          static_cast<int>(count), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmBatchedEx (attention context)");
}

}  // namespace sparq::gpu
