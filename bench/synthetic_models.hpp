// Synthetic encoders and decoders with the real architectures' shapes and random weights (no
// download), pruned as asked, for sparq-eval.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"
#include "sparq/models/llama_weights.hpp"
#include "sparq/types.hpp"

namespace sparq::bench {

// "bert-mini", "distilbert", "bert-base", "bert-large"; InvalidArgument for another name.
models::BertConfig synthetic_config(const std::string& name);
std::vector<std::string> synthetic_names();

// Random normal weights (std 0.02, as BERT's initializer), every encoder linear layer pruned by
// magnitude to `pattern` at `sparsity` (pattern dense or sparsity 0: left dense).
models::BertWeights synthetic_weights(const models::BertConfig& config, const Pattern& pattern,
                                      double sparsity, uint32_t seed);

// "llama-tiny" (smoke tests), "llama-1b" (TinyLlama's shape: hidden 2048, 22 layers, MLP 5632,
// 32 heads / 4 key-value heads, vocab 32000), "llama-7b" (Llama 2 7B's shape).
bool is_synthetic_llama(const std::string& name);
models::LlamaConfig synthetic_llama_config(const std::string& name);
// Random normal weights (std 0.02), norms 1; every attention and MLP projection pruned to
// `pattern` at `sparsity` (dense or 0: left dense); embeddings and the head dense.
models::LlamaWeights synthetic_llama_weights(const models::LlamaConfig& config,
                                             const Pattern& pattern, double sparsity,
                                             uint32_t seed);

}  // namespace sparq::bench
