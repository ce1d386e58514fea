// The fp32 weights of a BERT-family encoder, taken from a Hugging Face folder's safetensors by
// their BERT or DistilBERT names (with or without the "bert." / "distilbert." prefix that
// BertFor... and DistilBertFor... checkpoints add), every shape checked against config.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/bert_config.hpp"

namespace sparq {
class SafetensorsModel;
}

namespace sparq::models {

// A linear layer in nn.Linear layout: weight [out x in] row-major, bias [out].
struct LinearWeights {
  int64_t out = 0, in = 0;
  std::vector<float> weight, bias;
};

struct LayerNormWeights {
  std::vector<float> gamma, beta;
};

struct BertLayerWeights {
  LinearWeights query, key, value, attention_out, intermediate, output;
  LayerNormWeights attention_norm, output_norm;
};

struct BertWeights {
  std::vector<float> word_embeddings;        // [vocab x hidden]
  std::vector<float> position_embeddings;    // [max_position x hidden]
  std::vector<float> token_type_embeddings;  // [type_vocab x hidden]; empty for DistilBERT
  LayerNormWeights embedding_norm;
  std::vector<BertLayerWeights> layers;
  bool has_pooler = false;
  LinearWeights pooler;  // [hidden x hidden] + tanh, when the checkpoint has one
};

// Throws ModelFileError naming the folder and tensor for a missing tensor or a shape that
// disagrees with the config.
BertWeights load_bert_weights(const SafetensorsModel& model, const BertConfig& config);

// Query, key and value stacked into one [3 hidden x hidden] layer (rows: query's, key's, value's),
// as the encoders run them: one pass over the input for all three.
LinearWeights stacked_qkv(const BertLayerWeights& layer);

}  // namespace sparq::models
