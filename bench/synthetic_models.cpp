#include "bench/synthetic_models.hpp"

#include <random>

#include "sparq/error.hpp"
#include "sparse/prune.hpp"

namespace sparq::bench {
namespace {

// BERT's initializer: normal, std 0.02.
std::vector<float> normal_values(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = normal(rng);
  return v;
}

}  // namespace

std::vector<std::string> synthetic_names() {
  return {"bert-mini", "distilbert", "bert-base", "bert-large"};
}

models::BertConfig synthetic_config(const std::string& name) {
  models::BertConfig c;
  c.vocab_size = 30522;
  c.max_position = 512;
  c.type_vocab_size = 2;
  c.hidden_act = Activation::gelu_erf;
  auto shape = [&](int64_t layers, int64_t hidden, int64_t heads) {
    c.num_layers = layers;
    c.hidden_size = hidden;
    c.num_heads = heads;
    c.intermediate_size = 4 * hidden;
  };
  if (name == "bert-mini") {
    shape(4, 256, 4);
  } else if (name == "distilbert") {
    shape(6, 768, 12);
    c.arch = models::BertConfig::Arch::distilbert;
    c.type_vocab_size = 0;
  } else if (name == "bert-base") {
    shape(12, 768, 12);
  } else if (name == "bert-large") {
    shape(24, 1024, 16);
  } else {
    throw InvalidArgument("synthetic model '" + name +
                          "': expected bert-mini, distilbert, bert-base or bert-large");
  }
  return c;
}

models::BertWeights synthetic_weights(const models::BertConfig& c, const Pattern& pattern,
                                      double sparsity, uint32_t seed) {
  std::mt19937 rng(seed);
  auto vec = [&](int64_t n) { return normal_values(rng, n); };
  const bool prune = pattern.kind != Pattern::Kind::dense && sparsity > 0.0;
  auto linear = [&](int64_t out, int64_t in) {
    models::LinearWeights l;
    l.out = out;
    l.in = in;
    l.weight = vec(out * in);
    if (prune) l.weight = sparse::prune(l.weight, out, in, pattern, sparsity);
    l.bias = vec(out);
    return l;
  };
  auto norm = [&](int64_t h) {
    models::LayerNormWeights n{std::vector<float>(static_cast<size_t>(h), 1.0f), vec(h)};
    return n;
  };
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  models::BertWeights w;
  w.word_embeddings = vec(c.vocab_size * h);
  w.position_embeddings = vec(c.max_position * h);
  if (c.type_vocab_size) w.token_type_embeddings = vec(c.type_vocab_size * h);
  w.embedding_norm = norm(h);
  for (int64_t n = 0; n < c.num_layers; ++n)
    w.layers.push_back({linear(h, h), linear(h, h), linear(h, h), linear(h, h), linear(i, h),
                        linear(h, i), norm(h), norm(h)});
  return w;
}

bool is_synthetic_llama(const std::string& name) { return name.rfind("llama-", 0) == 0; }

models::LlamaConfig synthetic_llama_config(const std::string& name) {
  models::LlamaConfig c;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-5;
  auto shape = [&](int64_t vocab, int64_t hidden, int64_t layers, int64_t mlp, int64_t heads,
                   int64_t kv_heads, int64_t positions) {
    c.vocab_size = vocab;
    c.hidden_size = hidden;
    c.num_layers = layers;
    c.intermediate_size = mlp;
    c.num_heads = heads;
    c.num_kv_heads = kv_heads;
    c.head_dim = hidden / heads;
    c.max_position = positions;
  };
  if (name == "llama-tiny")
    shape(512, 128, 2, 352, 4, 2, 1024);
  else if (name == "llama-1b")
    shape(32000, 2048, 22, 5632, 32, 4, 2048);
  else if (name == "llama-7b")
    shape(32000, 4096, 32, 11008, 32, 32, 4096);
  else
    throw InvalidArgument("synthetic model '" + name +
                          "': expected llama-tiny, llama-1b or llama-7b");
  return c;
}

models::LlamaWeights synthetic_llama_weights(const models::LlamaConfig& c, const Pattern& pattern,
                                             double sparsity, uint32_t seed) {
  std::mt19937 rng(seed);
  auto vec = [&](int64_t n) { return normal_values(rng, n); };
  auto linear = [&](int64_t out, int64_t in) {
    return models::LinearWeights{out, in, vec(out * in),
                                 std::vector<float>(static_cast<size_t>(out))};
  };
  const auto ones = std::vector<float>(static_cast<size_t>(c.hidden_size), 1.0f);
  const int64_t h = c.hidden_size, d = c.head_dim, i = c.intermediate_size;
  models::LlamaWeights w;
  w.embed = vec(c.vocab_size * h);
  for (int64_t n = 0; n < c.num_layers; ++n)
    w.layers.push_back({ones, linear(c.num_heads * d, h), linear(c.num_kv_heads * d, h),
                        linear(c.num_kv_heads * d, h), linear(h, c.num_heads * d), ones,
                        linear(i, h), linear(i, h), linear(h, i)});
  w.final_norm = ones;
  w.lm_head = linear(c.vocab_size, h);
  models::prune_projections(w, pattern, sparsity);
  return w;
}

}  // namespace sparq::bench
