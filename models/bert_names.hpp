// The Hugging Face tensor names of one encoder layer (without the weight/bias suffix and without
// the "bert." / "distilbert." prefix), for BERT and DistilBERT: one table for loading and saving.
#pragma once

#include <cstdint>
#include <string>

#include "sparq/models/bert_config.hpp"

namespace sparq::models {

struct BertLayerNames {
  std::string query, key, value, attention_out, attention_norm, intermediate, output, output_norm;
};

inline BertLayerNames bert_layer_names(BertConfig::Arch arch, int64_t layer) {
  if (arch == BertConfig::Arch::distilbert) {
    const std::string p = "transformer.layer." + std::to_string(layer) + ".";
    return {p + "attention.q_lin",   p + "attention.k_lin",  p + "attention.v_lin",
            p + "attention.out_lin", p + "sa_layer_norm",    p + "ffn.lin1",
            p + "ffn.lin2",          p + "output_layer_norm"};
  }
  const std::string p = "encoder.layer." + std::to_string(layer) + ".";
  return {p + "attention.self.query",
          p + "attention.self.key",
          p + "attention.self.value",
          p + "attention.output.dense",
          p + "attention.output.LayerNorm",
          p + "intermediate.dense",
          p + "output.dense",
          p + "output.LayerNorm"};
}

}  // namespace sparq::models
