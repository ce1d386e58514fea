#include "sparq/models/llama_weights.hpp"

#include <tbb/parallel_for.h>

#include "sparq/error.hpp"
#include "sparse/prune.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {
namespace {

std::vector<float> get(const SafetensorsModel& m, const std::string& name,
                       const std::vector<int64_t>& shape) {
  const TensorView& t = m.tensor(name);
  if (t.shape != shape) {
    auto dims = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    throw ModelFileError(m.dir() + ": tensor '" + name + "' has shape " + dims(t.shape) +
                         "; the config needs " + dims(shape));
  }
  std::vector<float> values = t.to_f32();
  m.release(name);
  return values;
}

// with_bias: the architecture's projection has a bias (Qwen2's q, k, v), which must be there;
// otherwise a bias in the file is refused rather than dropped.
LinearWeights linear(const SafetensorsModel& m, const std::string& name, int64_t out, int64_t in,
                     bool with_bias = false) {
  LinearWeights l;
  l.out = out;
  l.in = in;
  l.weight = get(m, name + ".weight", {out, in});
  if (with_bias) {
    l.bias = get(m, name + ".bias", {out});
  } else {
    if (m.contains(name + ".bias"))
      throw ModelFileError(m.dir() + ": tensor '" + name +
                           ".bias': this projection has no bias in the architecture, sparq does "
                           "not read one");
    l.bias.assign(static_cast<size_t>(out), 0.0f);
  }
  return l;
}

}  // namespace

LlamaWeightSource llama_weight_source(const SafetensorsModel& m, const LlamaConfig& c) {
  const int64_t h = c.hidden_size;
  LlamaWeightSource s;
  s.embed = [&m, c, h] { return get(m, "model.embed_tokens.weight", {c.vocab_size, h}); };
  s.final_norm = [&m, h] { return get(m, "model.norm.weight", {h}); };
  s.layer = [&m, c, h](int64_t n) {
    const int64_t i = c.intermediate_size, d = c.head_dim;
    const std::string p = "model.layers." + std::to_string(n) + ".";
    LlamaLayerWeights l;
    l.attention_norm = get(m, p + "input_layernorm.weight", {h});
    l.q = linear(m, p + "self_attn.q_proj", c.num_heads * d, h, c.qkv_bias);
    l.k = linear(m, p + "self_attn.k_proj", c.num_kv_heads * d, h, c.qkv_bias);
    l.v = linear(m, p + "self_attn.v_proj", c.num_kv_heads * d, h, c.qkv_bias);
    l.o = linear(m, p + "self_attn.o_proj", h, c.num_heads * d);
    l.mlp_norm = get(m, p + "post_attention_layernorm.weight", {h});
    l.gate = linear(m, p + "mlp.gate_proj", i, h);
    l.up = linear(m, p + "mlp.up_proj", i, h);
    l.down = linear(m, p + "mlp.down_proj", h, i);
    return l;
  };
  s.lm_head = [&m, c, h] {
    if (!c.tie_word_embeddings || m.contains("lm_head.weight"))
      return linear(m, "lm_head", c.vocab_size, h);
    return LinearWeights{};
  };
  return s;
}

LlamaWeights load_llama_weights(const LlamaWeightSource& s, const LlamaConfig& c) {
  LlamaWeights w;
  w.embed = s.embed();
  for (int64_t n = 0; n < c.num_layers; ++n) w.layers.push_back(s.layer(n));
  w.final_norm = s.final_norm();
  w.lm_head = s.lm_head();
  return w;
}

LlamaWeights load_llama_weights(const SafetensorsModel& m, const LlamaConfig& c) {
  return load_llama_weights(llama_weight_source(m, c), c);
}

void prune_projections(LlamaWeights& w, const Pattern& pattern, double sparsity) {
  if (sparsity <= 0 || pattern.kind == Pattern::Kind::dense) return;
  const Pattern as = pattern.kind == Pattern::Kind::automatic ? Pattern::blocks(4, 1) : pattern;
  // Layers side by side (on the calling thread's task arena): each matrix prunes on one thread.
  tbb::parallel_for(size_t{0}, w.layers.size(),
                    [&](size_t n) { prune_projections(w.layers[n], as, sparsity); });
}

void prune_projections(LlamaLayerWeights& l, const Pattern& pattern, double sparsity) {
  if (sparsity <= 0 || pattern.kind == Pattern::Kind::dense) return;
  const Pattern as = pattern.kind == Pattern::Kind::automatic ? Pattern::blocks(4, 1) : pattern;
  for (auto* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
    lin->weight = sparse::prune(lin->weight, lin->out, lin->in, as, sparsity);
}

}  // namespace sparq::models
