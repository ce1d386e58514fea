// A tiny Llama-family config (grouped-query attention, 2 layers) and random weights for it,
// shared by the decoder tests.
#pragma once

#include <cstdint>
#include <vector>

#include "sparq/models/llama_config.hpp"
#include "sparq/models/llama_weights.hpp"
#include "sparse/prune.hpp"
#include "test_util.hpp"

namespace sparq::test {

inline models::LlamaConfig small_llama_config() {
  models::LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  return c;
}

// Linear weights uniform in +-0.4 (pruned in 4x1 blocks to `sparsity` when > 0), zero biases,
// norms 1 +- 0.2, embeddings +-1; an output head unless the config ties it.
inline models::LlamaWeights random_llama_weights(const models::LlamaConfig& c, double sparsity,
                                                 uint32_t seed) {
  auto vec = [&](int64_t n, float scale) {
    return random_floats(static_cast<size_t>(n), seed++, -scale, scale);
  };
  auto linear = [&](int64_t out, int64_t in) {
    models::LinearWeights l{out, in, vec(out * in, 0.4f),
                            std::vector<float>(static_cast<size_t>(out))};
    if (sparsity > 0) l.weight = sparse::prune(l.weight, out, in, Pattern::blocks(4, 1), sparsity);
    return l;
  };
  auto norm = [&] {
    auto n = vec(c.hidden_size, 0.2f);
    for (float& g : n) g += 1.0f;
    return n;
  };
  const int64_t h = c.hidden_size, d = c.head_dim;
  models::LlamaWeights w;
  w.embed = vec(c.vocab_size * h, 1.0f);
  for (int64_t n = 0; n < c.num_layers; ++n)
    w.layers.push_back({norm(), linear(c.num_heads * d, h), linear(c.num_kv_heads * d, h),
                        linear(c.num_kv_heads * d, h), linear(h, c.num_heads * d), norm(),
                        linear(c.intermediate_size, h), linear(c.intermediate_size, h),
                        linear(h, c.intermediate_size)});
  w.final_norm = norm();
  if (!c.tie_word_embeddings) w.lm_head = linear(c.vocab_size, h);
  return w;
}

}  // namespace sparq::test
