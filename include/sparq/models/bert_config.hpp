// The shape of a BERT-family encoder, read from a Hugging Face config.json: BERT (BertModel,
// BertFor..., which covers MiniLM) and DistilBERT naming of the keys.
#pragma once

#include <cstdint>
#include <string>

#include "sparq/types.hpp"

namespace sparq::models {

struct BertConfig {
  enum class Arch { bert, distilbert };
  Arch arch = Arch::bert;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position = 0;
  int64_t type_vocab_size = 0;  // 0 for DistilBERT (no token type embeddings)
  double layer_norm_eps = 1e-12;
  Activation hidden_act = Activation::gelu_erf;  // "gelu" is the erf form; "gelu_new" the tanh

  int64_t head_dim() const { return hidden_size / num_heads; }

  // Throws ModelFileError naming the file and key for a missing, mistyped or implausible value.
  static BertConfig from_file(const std::string& config_json_path);
  static BertConfig from_json_text(const std::string& text, const std::string& origin);

 private:
  // from_json_text's checks (which guard the JSON library's own type errors around it).
  static BertConfig parse(const std::string& text, const std::string& origin);
};

}  // namespace sparq::models
