#include "sparq/models/llama_config.hpp"

#include "models/config_json.hpp"
#include "models/decoder_architecture.hpp"

namespace sparq::models {

using config_json::fail;
using config_json::positive;

LlamaConfig LlamaConfig::from_file(const std::string& path) {
  return from_json_text(config_json::read_file(path), path);
}

namespace {

LlamaConfig parse(const std::string& text, const std::string& origin) {
  const nlohmann::json j = config_json::parse_object(text, origin);
  const std::string type = j.contains("model_type") && j["model_type"].is_string()
                               ? j["model_type"].get<std::string>()
                               : "";
  const DecoderArchitecture* arch = find_decoder_architecture(type);
  if (!arch)
    fail(origin, "model_type '" + type +
                     "' is not a Llama-family decoder sparq runs (llama, mistral, qwen2)");
  constexpr int64_t kMaxVocab = 1 << 22, kMaxWidth = 1 << 16, kMaxLayers = 1024;
  LlamaConfig c;
  c.architecture = arch->name;
  c.qkv_bias = arch->qkv_bias;
  c.vocab_size = positive(j, "vocab_size", origin, kMaxVocab);
  c.hidden_size = positive(j, "hidden_size", origin, kMaxWidth);
  c.intermediate_size = positive(j, "intermediate_size", origin, 8 * kMaxWidth);
  c.num_layers = positive(j, "num_hidden_layers", origin, kMaxLayers);
  c.num_heads = positive(j, "num_attention_heads", origin, kMaxWidth);
  c.num_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                       ? positive(j, "num_key_value_heads", origin, kMaxWidth)
                       : c.num_heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null()
                   ? positive(j, "head_dim", origin, kMaxWidth)
                   : c.hidden_size / c.num_heads;
  c.max_position = positive(j, "max_position_embeddings", origin, 1 << 24);
  c.rms_norm_eps = config_json::number(j, "rms_norm_eps", origin, 0.0, 1.0, 1e-6);
  // transformers 5 writes rope_theta and the rope type into rope_parameters; older files keep
  // rope_theta at the top and the type in rope_scaling.
  const bool rope_parameters = j.contains("rope_parameters") && !j["rope_parameters"].is_null();
  if (rope_parameters && !j["rope_parameters"].is_object())
    fail(origin, "'rope_parameters' is not an object");
  c.rope_theta = rope_parameters
                     ? config_json::number(j["rope_parameters"], "rope_theta",
                                           origin + " (rope_parameters)", 1.0, 1e12, 10000.0)
                     : config_json::number(j, "rope_theta", origin, 1.0, 1e12, 10000.0);
  if (j.contains("tie_word_embeddings")) {
    if (!j["tie_word_embeddings"].is_boolean()) fail(origin, "'tie_word_embeddings' is not a bool");
    c.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    fail(origin, "'hidden_act' is " + j["hidden_act"].dump() + "; Llama's MLP is SwiGLU (silu)");
  const char* scaling_key = rope_parameters ? "rope_parameters" : "rope_scaling";
  if (j.contains(scaling_key) && !j[scaling_key].is_null()) {
    const auto& s = j[scaling_key];
    const std::string where = origin + " (" + scaling_key + ")";
    if (!s.is_object()) fail(origin, std::string("'") + scaling_key + "' is not an object");
    const char* kind_key = s.contains("rope_type") ? "rope_type" : "type";
    if (s.contains(kind_key) && !s[kind_key].is_string())
      fail(where, std::string("'") + kind_key + "' is not a string");
    const std::string kind = s.contains(kind_key) ? s[kind_key].get<std::string>() : "";
    c.rope_scaling.factor = config_json::number(s, "factor", where, 0.0, 1e6, 1.0);
    if (kind == "linear") {
      c.rope_scaling.kind = RopeScaling::Kind::linear;
    } else if (kind == "llama3") {
      c.rope_scaling.kind = RopeScaling::Kind::llama3;
      c.rope_scaling.low_freq_factor = config_json::number(s, "low_freq_factor", where, 0, 1e6, 1);
      c.rope_scaling.high_freq_factor =
          config_json::number(s, "high_freq_factor", where, 0, 1e6, 4);
      c.rope_scaling.original_max_position =
          positive(s, "original_max_position_embeddings", where, 1 << 24);
      if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor))
        fail(where, "high_freq_factor must exceed low_freq_factor");
    } else if (kind != "default") {
      fail(where, "rope type '" + kind + "'; sparq knows default, linear and llama3");
    }
  }
  // Sliding-window attention (Mistral): over the last `sliding_window` positions. Qwen2 configs
  // name a window they do not use (use_sliding_window false); transformers 5 lists each layer's
  // attention kind in layer_types.
  const bool window_used = !j.contains("use_sliding_window") || j["use_sliding_window"] != false;
  if (window_used && j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    const int64_t window = positive(j, "sliding_window", origin, 1 << 24);
    if (window < c.max_position) c.sliding_window = window;  // else it never binds
  }
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const auto& types = j["layer_types"];
    if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_layers)
      fail(origin, "'layer_types' is not a list of " + std::to_string(c.num_layers) + " entries");
    bool any = false;
    for (const auto& kind : types) {
      if (kind != "full_attention" && kind != "sliding_attention")
        fail(origin, "layer_types lists " + kind.dump() +
                         "; sparq knows full_attention and sliding_attention");
      c.sliding_layers.push_back(kind == "sliding_attention");
      any = any || kind == "sliding_attention";
    }
    if (!any) {
      c.sliding_layers.clear();
      c.sliding_window = 0;  // no layer slides
    } else if (c.sliding_window == 0) {
      fail(origin, "layer_types lists sliding_attention but no sliding_window applies");
    }
  }
  if (c.num_heads % c.num_kv_heads != 0)
    fail(origin, std::to_string(c.num_heads) + " attention heads are not a multiple of " +
                     std::to_string(c.num_kv_heads) + " key/value heads");
  if (c.head_dim % 2 != 0) fail(origin, "head_dim " + std::to_string(c.head_dim) + " is odd");
  return c;
}

}  // namespace

LlamaConfig LlamaConfig::from_json_text(const std::string& text, const std::string& origin) {
  return config_json::guarded(origin, [&] { return parse(text, origin); });
}

}  // namespace sparq::models
