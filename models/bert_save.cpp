#include "models/bert_save.hpp"

#include <nlohmann/json.hpp>
#include <vector>

#include "models/bert_names.hpp"
#include "models/folder_writer.hpp"
#include "sparq/error.hpp"

namespace sparq::models {
namespace {

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::gelu_erf:
      return "gelu";
    case Activation::gelu_tanh:
      return "gelu_new";
    case Activation::relu:
      return "relu";
    case Activation::silu:
      return "silu";
    case Activation::none:
      break;
  }
  throw InvalidArgument("save_bert_folder: an encoder's activation cannot be 'none'");
}

}  // namespace

std::string bert_config_json(const BertConfig& c) {
  nlohmann::ordered_json j;
  if (c.arch == BertConfig::Arch::distilbert) {
    j = {{"architectures", {"DistilBertModel"}},
         {"model_type", "distilbert"},
         {"vocab_size", c.vocab_size},
         {"dim", c.hidden_size},
         {"n_layers", c.num_layers},
         {"n_heads", c.num_heads},
         {"hidden_dim", c.intermediate_size},
         {"max_position_embeddings", c.max_position},
         {"activation", activation_name(c.hidden_act)}};
  } else {
    j = {{"architectures", {"BertModel"}},
         {"model_type", "bert"},
         {"vocab_size", c.vocab_size},
         {"hidden_size", c.hidden_size},
         {"num_hidden_layers", c.num_layers},
         {"num_attention_heads", c.num_heads},
         {"intermediate_size", c.intermediate_size},
         {"max_position_embeddings", c.max_position},
         {"type_vocab_size", c.type_vocab_size},
         {"hidden_act", activation_name(c.hidden_act)},
         {"layer_norm_eps", c.layer_norm_eps}};
  }
  return j.dump(2) + "\n";
}

void save_bert_folder(const std::string& dir, const BertConfig& c, const BertWeights& w,
                      TensorDType dtype) {
  FolderWriter out("save_bert_folder", dtype);
  if (static_cast<int64_t>(w.layers.size()) != c.num_layers)
    throw InvalidArgument("save_bert_folder: " + std::to_string(w.layers.size()) +
                          " layers of weights for a config of " + std::to_string(c.num_layers));
  const bool distil = c.arch == BertConfig::Arch::distilbert;
  const int64_t h = c.hidden_size;
  auto linear = [&](const std::string& name, const LinearWeights& l) {
    out.add(name + ".weight", l.weight, {l.out, l.in});
    out.add(name + ".bias", l.bias, {l.out});
  };
  auto norm = [&](const std::string& name, const LayerNormWeights& n) {
    out.add(name + ".weight", n.gamma, {h});
    out.add(name + ".bias", n.beta, {h});
  };
  out.add("embeddings.word_embeddings.weight", w.word_embeddings, {c.vocab_size, h});
  out.add("embeddings.position_embeddings.weight", w.position_embeddings, {c.max_position, h});
  if (!distil)
    out.add("embeddings.token_type_embeddings.weight", w.token_type_embeddings,
            {c.type_vocab_size, h});
  norm("embeddings.LayerNorm", w.embedding_norm);
  for (int64_t n = 0; n < c.num_layers; ++n) {
    const BertLayerWeights& l = w.layers[static_cast<size_t>(n)];
    const BertLayerNames names = bert_layer_names(c.arch, n);
    linear(names.query, l.query);
    linear(names.key, l.key);
    linear(names.value, l.value);
    linear(names.attention_out, l.attention_out);
    norm(names.attention_norm, l.attention_norm);
    linear(names.intermediate, l.intermediate);
    linear(names.output, l.output);
    norm(names.output_norm, l.output_norm);
  }
  if (!distil && w.has_pooler) linear("pooler.dense", w.pooler);

  out.write(dir, bert_config_json(c));
}

}  // namespace sparq::models
