// Self-attention of one layer on oneDNN primitives, to measure sparq's own attention against:
// S = Q K^T / sqrt(d) as one batched matmul over the heads (strided views of the stacked
// query/key/value rows), oneDNN's softmax, then ctx = P V as a second batched matmul.
#pragma once

#include <cstdint>
#include <memory>

namespace sparq::bench {

class OneDnnAttention {
 public:
  // One sequence of `len` tokens; qkv rows are [query | key | value], each heads * d wide.
  OneDnnAttention(int64_t len, int64_t heads, int64_t d, int threads);
  ~OneDnnAttention();
  // qkv [len x 3 heads d] -> ctx [len x heads d]
  void run(const float* qkv, float* ctx) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq::bench
