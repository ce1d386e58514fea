#include "sparq/models/bert_config.hpp"

#include "models/config_json.hpp"

namespace sparq::models {
namespace {

using config_json::fail;
using config_json::positive;

Activation activation(const nlohmann::json& j, const std::string& key, const std::string& origin) {
  if (!j.contains(key)) return Activation::gelu_erf;  // the Hugging Face default
  if (!j[key].is_string()) fail(origin, "'" + key + "' is not a string");
  const std::string a = j[key].get<std::string>();
  if (a == "gelu") return Activation::gelu_erf;
  if (a == "gelu_new" || a == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  if (a == "relu") return Activation::relu;
  if (a == "silu" || a == "swish") return Activation::silu;
  fail(origin, "'" + key + "' is '" + a + "'; sparq knows gelu, gelu_new, relu and silu");
}

}  // namespace

BertConfig BertConfig::from_file(const std::string& path) {
  return from_json_text(config_json::read_file(path), path);
}

BertConfig BertConfig::from_json_text(const std::string& text, const std::string& origin) {
  return config_json::guarded(origin, [&] { return parse(text, origin); });
}

BertConfig BertConfig::parse(const std::string& text, const std::string& origin) {
  const nlohmann::json j = config_json::parse_object(text, origin);
  const std::string type = j.contains("model_type") && j["model_type"].is_string()
                               ? j["model_type"].get<std::string>()
                               : "";
  BertConfig c;
  // Generous upper bounds: far beyond real models, small enough that sizes stay sane.
  constexpr int64_t kMaxVocab = 1 << 22, kMaxWidth = 1 << 16, kMaxLayers = 1024;
  if (type == "distilbert") {
    c.arch = Arch::distilbert;
    c.vocab_size = positive(j, "vocab_size", origin, kMaxVocab);
    c.hidden_size = positive(j, "dim", origin, kMaxWidth);
    c.num_layers = positive(j, "n_layers", origin, kMaxLayers);
    c.num_heads = positive(j, "n_heads", origin, kMaxWidth);
    c.intermediate_size = positive(j, "hidden_dim", origin, 4 * kMaxWidth);
    c.max_position = positive(j, "max_position_embeddings", origin, kMaxWidth);
    c.type_vocab_size = 0;
    c.hidden_act = activation(j, "activation", origin);
  } else if (type == "bert" || type.empty()) {
    c.arch = Arch::bert;
    c.vocab_size = positive(j, "vocab_size", origin, kMaxVocab);
    c.hidden_size = positive(j, "hidden_size", origin, kMaxWidth);
    c.num_layers = positive(j, "num_hidden_layers", origin, kMaxLayers);
    c.num_heads = positive(j, "num_attention_heads", origin, kMaxWidth);
    c.intermediate_size = positive(j, "intermediate_size", origin, 4 * kMaxWidth);
    c.max_position = positive(j, "max_position_embeddings", origin, kMaxWidth);
    c.type_vocab_size =
        j.contains("type_vocab_size") ? positive(j, "type_vocab_size", origin, 1 << 10) : 2;
    c.hidden_act = activation(j, "hidden_act", origin);
    c.layer_norm_eps = config_json::number(j, "layer_norm_eps", origin, 0.0, 1.0, 1e-12);
  } else {
    fail(origin, "model_type '" + type + "' is not a BERT-family encoder (bert, distilbert)");
  }
  if (c.hidden_size % c.num_heads != 0)
    fail(origin, "hidden size " + std::to_string(c.hidden_size) + " is not a multiple of " +
                     std::to_string(c.num_heads) + " attention heads");
  return c;
}

}  // namespace sparq::models
