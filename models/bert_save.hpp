// Writes an encoder as a Hugging Face folder (config.json + model.safetensors, BertModel /
// DistilBertModel naming without a prefix), so that other runtimes can load exactly the weights
// sparq runs: sparq-eval --save hands synthetic pruned models to the peer benchmarks.
#pragma once

#include <string>

#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {

// The config.json text that BertConfig::from_json_text reads back as `config`.
std::string bert_config_json(const BertConfig& config);

// Creates `dir` if needed; weights are stored as `dtype` (a float dtype). Throws ModelFileError
// when the folder cannot be written, InvalidArgument when weights and config disagree.
void save_bert_folder(const std::string& dir, const BertConfig& config, const BertWeights& weights,
                      TensorDType dtype = TensorDType::f32);

}  // namespace sparq::models
