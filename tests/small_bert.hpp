// Small random BERT-family models for the encoder tests (CPU and GPU): a config of a given width
// and random weights in the ranges the tests rely on.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"
#include "test_util.hpp"

namespace sparq::test {

struct SmallBertShape {
  int64_t hidden = 32, intermediate = 64, max_position = 24;
};

inline models::BertConfig small_bert_config(
    models::BertConfig::Arch arch = models::BertConfig::Arch::bert, SmallBertShape s = {}) {
  models::BertConfig c;
  c.arch = arch;
  c.vocab_size = 50;
  c.hidden_size = s.hidden;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = s.intermediate;
  c.max_position = s.max_position;
  c.type_vocab_size = arch == models::BertConfig::Arch::bert ? 2 : 0;
  c.hidden_act = Activation::gelu_erf;
  return c;
}

// Linear weights uniform in +-weight_scale(in), then `prune(weight, out, in)` when given; biases
// +-0.1, LayerNorm gamma 1 +- 0.2 and beta +-0.1, embeddings +-1 (word) and +-0.5.
using PruneFn = std::function<std::vector<float>(const std::vector<float>&, int64_t, int64_t)>;
inline models::BertWeights random_bert_weights(const models::BertConfig& c, uint32_t seed,
                                               const std::function<float(int64_t)>& weight_scale,
                                               const PruneFn& prune = nullptr) {
  auto vec = [&](int64_t n, float scale) {
    return random_floats(static_cast<size_t>(n), seed++, -scale, scale);
  };
  auto linear = [&](int64_t out, int64_t in) {
    models::LinearWeights l;
    l.out = out;
    l.in = in;
    l.weight = vec(out * in, weight_scale(in));
    if (prune) l.weight = prune(l.weight, out, in);
    l.bias = vec(out, 0.1f);
    return l;
  };
  auto norm = [&](int64_t h) {
    models::LayerNormWeights n{vec(h, 0.2f), vec(h, 0.1f)};
    for (float& g : n.gamma) g += 1.0f;
    return n;
  };
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  models::BertWeights w;
  w.word_embeddings = vec(c.vocab_size * h, 1.0f);
  w.position_embeddings = vec(c.max_position * h, 0.5f);
  if (c.type_vocab_size) w.token_type_embeddings = vec(c.type_vocab_size * h, 0.5f);
  w.embedding_norm = norm(h);
  for (int64_t n = 0; n < c.num_layers; ++n)
    w.layers.push_back({linear(h, h), linear(h, h), linear(h, h), linear(h, h), linear(i, h),
                        linear(h, i), norm(h), norm(h)});
  return w;
}

}  // namespace sparq::test
