// Synthetic encoders with the real architectures' shapes and random weights (no download), pruned
// as asked, for sparq-eval.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"
#include "sparq/types.hpp"

namespace sparq::bench {

// "bert-mini", "distilbert", "bert-base", "bert-large"; InvalidArgument for another name.
models::BertConfig synthetic_config(const std::string& name);
std::vector<std::string> synthetic_names();

// Random normal weights (std 0.02, as BERT's initializer), every encoder linear layer pruned by
// magnitude to `pattern` at `sparsity` (pattern dense or sparsity 0: left dense).
models::BertWeights synthetic_weights(const models::BertConfig& config, const Pattern& pattern,
                                      double sparsity, uint32_t seed);

}  // namespace sparq::bench
