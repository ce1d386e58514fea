#include "sparq/models/bert_weights.hpp"

#include "models/bert_names.hpp"
#include "sparq/error.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

class Loader {
 public:
  Loader(const SafetensorsModel& model, const std::string& prefix)
      : model_(model), prefix_(prefix) {}

  bool has(const std::string& name) const { return model_.contains(prefix_ + name); }

  // The tensor `name` (one of `alternatives` for older checkpoints), as fp32, of this shape.
  std::vector<float> get(const std::vector<std::string>& alternatives,
                         const std::vector<int64_t>& shape) const {
    for (const auto& name : alternatives)
      if (model_.contains(prefix_ + name)) {
        const TensorView& t = model_.tensor(prefix_ + name);
        if (t.shape != shape)
          throw ModelFileError(model_.dir() + ": tensor '" + prefix_ + name + "' has shape " +
                               shape_text(t.shape) + "; config.json implies " + shape_text(shape));
        return t.to_f32();
      }
    throw ModelFileError(model_.dir() + ": missing tensor '" + prefix_ + alternatives.front() +
                         "'");
  }

  LinearWeights linear(const std::string& name, int64_t out, int64_t in) const {
    LinearWeights l;
    l.out = out;
    l.in = in;
    l.weight = get({name + ".weight"}, {out, in});
    l.bias = get({name + ".bias"}, {out});
    return l;
  }

  LayerNormWeights norm(const std::string& name, int64_t hidden) const {
    return {get({name + ".weight", name + ".gamma"}, {hidden}),
            get({name + ".bias", name + ".beta"}, {hidden})};
  }

 private:
  const SafetensorsModel& model_;
  std::string prefix_;
};

}  // namespace

BertWeights load_bert_weights(const SafetensorsModel& model, const BertConfig& c) {
  const bool distil = c.arch == BertConfig::Arch::distilbert;
  // BertFor... / DistilBertFor... checkpoints prefix the encoder's names.
  const std::string family = distil ? "distilbert." : "bert.";
  const std::string prefix =
      model.contains(family + "embeddings.word_embeddings.weight") ? family : "";
  const Loader l(model, prefix);
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  BertWeights w;
  w.word_embeddings = l.get({"embeddings.word_embeddings.weight"}, {c.vocab_size, h});
  w.position_embeddings = l.get({"embeddings.position_embeddings.weight"}, {c.max_position, h});
  if (!distil)
    w.token_type_embeddings =
        l.get({"embeddings.token_type_embeddings.weight"}, {c.type_vocab_size, h});
  w.embedding_norm = l.norm("embeddings.LayerNorm", h);
  for (int64_t n = 0; n < c.num_layers; ++n) {
    const BertLayerNames names = bert_layer_names(c.arch, n);
    BertLayerWeights layer;
    layer.query = l.linear(names.query, h, h);
    layer.key = l.linear(names.key, h, h);
    layer.value = l.linear(names.value, h, h);
    layer.attention_out = l.linear(names.attention_out, h, h);
    layer.attention_norm = l.norm(names.attention_norm, h);
    layer.intermediate = l.linear(names.intermediate, i, h);
    layer.output = l.linear(names.output, h, i);
    layer.output_norm = l.norm(names.output_norm, h);
    w.layers.push_back(std::move(layer));
  }
  if (!distil && l.has("pooler.dense.weight")) {
    w.has_pooler = true;
    w.pooler = l.linear("pooler.dense", h, h);
  }
  return w;
}

LinearWeights stacked_qkv(const BertLayerWeights& layer) {
  LinearWeights s;
  s.out = layer.query.out + layer.key.out + layer.value.out;
  s.in = layer.query.in;
  for (const LinearWeights* p : {&layer.query, &layer.key, &layer.value}) {
    s.weight.insert(s.weight.end(), p->weight.begin(), p->weight.end());
    s.bias.insert(s.bias.end(), p->bias.begin(), p->bias.end());
  }
  return s;
}

}  // namespace sparq::models
