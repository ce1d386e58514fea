// Self-attention of a run of (sequence, head) pairs with both products on oneDNN's batched bf16
// matmul, which runs on AMX tiles where oneDNN runs bf16 there: the roundings of
// attention_head_bf16 (q, k, v and the probabilities rounded to bf16 to nearest even, fp32
// products and softmax), whose portable twin is its reference. Why: on a Xeon with AMX the
// per-head vdpbf16ps kernel ran BERT-base's attention at 558 us a layer and the fp32 one at 406;
// the two products take 80 + 54 us on AMX (docs/benchmarks-amx.md).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "src/dnnl_matmul.hpp"

namespace sparq::models {

// Whether oneDNN runs bf16 products on AMX here (then an encoder's bf16 attention takes this
// path).
bool batched_bf16_attention_on_amx();

class BatchedBf16Attention {
 public:
  // heads of dimension d per sequence; d even.
  BatchedBf16Attention(int64_t heads, int64_t d);

  // The pairs w0..w1-1 (w = sequence * heads + head) of a batch of sequences of `seq` rows:
  // qkv [sequences * seq x 3 * heads * d] (each token's q, then k, then v, head-major within),
  // lengths [sequences] (1..seq), ctx [sequences * seq x heads * d]; a pair's rows past its
  // sequence's length are set to zero. On the calling thread.
  void run(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0, int64_t w1,
           float* ctx) const;

  // oneDNN's kernel for the products of `seq` rows (e.g. "brg:avx512_core_amx_bf16").
  std::string implementation(int64_t seq) const;

 private:
  struct Products {
    DnnlBatchedBf16Matmul scores, context;
  };
  // The two products for `count` pairs of `rows` rows (padded to 16), made on first use.
  std::shared_ptr<const Products> products(int64_t count, int64_t rows) const;

  void run_pairs(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0, int64_t w1,
                 float* ctx) const;
  int64_t heads_, d_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const Products>> products_;
};

}  // namespace sparq::models
