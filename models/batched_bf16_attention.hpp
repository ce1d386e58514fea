// Self-attention of a run of (sequence, head) pairs with both products on AMX: sparq's own tile
// code (one head at a time, head dimensions of multiples of 32) or oneDNN's batched bf16 matmul (a
// few heads per call, where oneDNN runs bf16 on AMX); the roundings of attention_head_bf16 (q, k,
// v and the probabilities rounded to bf16 to nearest even, fp32 products and softmax), whose
// portable twin is its reference. Why: on a Xeon with AMX the per-head vdpbf16ps kernel ran
// BERT-base's attention at 558 us a layer and the fp32 one at 406; on oneDNN's matmul 276-294 us,
// on sparq's tiles 250 (docs/benchmarks-amx.md).
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

// Whether sparq's own AMX products run here for head dimension d (AMX-BF16 granted by the OS,
// d a multiple of 32).
bool amx_tiles_for_attention(int64_t d);

namespace detail {
// c [m][n] fp32 = a [m][k] bf16 x b on AMX tiles, b given as b_pairs [k / 2][n] (pairs of b's
// consecutive rows as dwords); m, n, k multiples of 32. A head's scores are q x k^T (b_pairs:
// each key's dimension pairs, one key per column), its context p x v (b_pairs: pairs of keys, one
// dimension per column).
void amx_bf16_product(const uint16_t* a, const uint32_t* b_pairs, int64_t m, int64_t n, int64_t k,
                      float* c);
}  // namespace detail

class BatchedBf16Attention {
 public:
  // Who computes the two products: sparq's AMX tile code (one head at a time), or oneDNN's
  // batched matmul (a few heads per call).
  enum class Products { own_tiles, onednn };
  // heads of dimension d per sequence; d even. own_tiles where amx_tiles_for_attention(d), else
  // NotSupported.
  BatchedBf16Attention(int64_t heads, int64_t d, Products products);

  // The pairs w0..w1-1 (w = sequence * heads + head) of a batch of sequences of `seq` rows:
  // qkv [sequences * seq x 3 * heads * d] (each token's q, then k, then v, head-major within),
  // lengths [sequences] (1..seq), ctx [sequences * seq x heads * d]; a pair's rows past its
  // sequence's length are set to zero. On the calling thread.
  void run(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0, int64_t w1,
           float* ctx) const;

  // Who runs the products: "amx_bf16 tiles", or "oneDNN batched matmul, " and oneDNN's kernel for
  // `seq` rows (e.g. "brg:avx512_core_amx_bf16").
  std::string implementation(int64_t seq) const;

 private:
  struct DnnlProducts {
    DnnlBatchedBf16Matmul scores, context;
  };
  // oneDNN's two products for `count` pairs of `rows` rows (padded), made on first use.
  std::shared_ptr<const DnnlProducts> products(int64_t count, int64_t rows) const;
  void run_pair_on_tiles(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w,
                         float* ctx) const;

  void run_pairs(const float* qkv, int64_t seq, const int64_t* lengths, int64_t w0, int64_t w1,
                 float* ctx) const;
  int64_t heads_, d_;
  bool own_tiles_;
  mutable std::mutex mutex_;
  mutable std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const DnnlProducts>> products_;
};

}  // namespace sparq::models
