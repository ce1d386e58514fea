#include "models/llama_save.hpp"

#include <nlohmann/json.hpp>
#include <vector>

#include "models/folder_writer.hpp"
#include "sparq/error.hpp"

namespace sparq::models {

std::string llama_config_json(const LlamaConfig& c) {
  nlohmann::ordered_json j = {{"architectures", {"LlamaForCausalLM"}},
                              {"model_type", "llama"},
                              {"vocab_size", c.vocab_size},
                              {"hidden_size", c.hidden_size},
                              {"intermediate_size", c.intermediate_size},
                              {"num_hidden_layers", c.num_layers},
                              {"num_attention_heads", c.num_heads},
                              {"num_key_value_heads", c.num_kv_heads},
                              {"head_dim", c.head_dim},
                              {"max_position_embeddings", c.max_position},
                              {"rms_norm_eps", c.rms_norm_eps},
                              {"rope_theta", c.rope_theta},
                              {"hidden_act", "silu"},
                              {"tie_word_embeddings", c.tie_word_embeddings}};
  const RopeScaling& s = c.rope_scaling;
  if (s.kind == RopeScaling::Kind::linear) {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", s.factor}};
  } else if (s.kind == RopeScaling::Kind::llama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", s.factor},
                         {"low_freq_factor", s.low_freq_factor},
                         {"high_freq_factor", s.high_freq_factor},
                         {"original_max_position_embeddings", s.original_max_position}};
  }
  return j.dump(2) + "\n";
}

void save_llama_folder(const std::string& dir, const LlamaConfig& c, const LlamaWeights& w,
                       TensorDType dtype) {
  FolderWriter out("save_llama_folder", dtype);
  if (!c.rope_freq_factors.empty())
    throw InvalidArgument(
        "save_llama_folder: per-frequency rope divisors (from a GGUF's rope_freqs.weight) have "
        "no config.json form; save the llama3 rope_scaling they came from instead");
  if (static_cast<int64_t>(w.layers.size()) != c.num_layers)
    throw InvalidArgument("save_llama_folder: " + std::to_string(w.layers.size()) +
                          " layers of weights for a config of " + std::to_string(c.num_layers));
  const int64_t h = c.hidden_size, i = c.intermediate_size, d = c.head_dim;
  out.add("model.embed_tokens.weight", w.embed, {c.vocab_size, h});
  for (int64_t n = 0; n < c.num_layers; ++n) {
    const LlamaLayerWeights& l = w.layers[static_cast<size_t>(n)];
    const std::string p = "model.layers." + std::to_string(n) + ".";
    out.add(p + "input_layernorm.weight", l.attention_norm, {h});
    out.add(p + "self_attn.q_proj.weight", l.q.weight, {c.num_heads * d, h});
    out.add(p + "self_attn.k_proj.weight", l.k.weight, {c.num_kv_heads * d, h});
    out.add(p + "self_attn.v_proj.weight", l.v.weight, {c.num_kv_heads * d, h});
    out.add(p + "self_attn.o_proj.weight", l.o.weight, {h, c.num_heads * d});
    out.add(p + "post_attention_layernorm.weight", l.mlp_norm, {h});
    out.add(p + "mlp.gate_proj.weight", l.gate.weight, {i, h});
    out.add(p + "mlp.up_proj.weight", l.up.weight, {i, h});
    out.add(p + "mlp.down_proj.weight", l.down.weight, {h, i});
  }
  out.add("model.norm.weight", w.final_norm, {h});
  if (!w.lm_head.weight.empty()) {
    out.add("lm_head.weight", w.lm_head.weight, {c.vocab_size, h});
  } else if (!c.tie_word_embeddings) {
    throw InvalidArgument("save_llama_folder: no lm_head weights for an untied config");
  }

  out.write(dir, llama_config_json(c));
}

}  // namespace sparq::models
