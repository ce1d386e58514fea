// The shape of a Llama-family decoder (Llama 2/3, SmolLM2, TinyLlama, Mistral, Qwen2): read from a
// Hugging Face config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM). Grouped-query
// attention when num_kv_heads < num_heads; rotary position embeddings with theta and the config's
// scaling (none, linear, llama3).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparq::models {

struct RopeScaling {
  enum class Kind { none, linear, llama3 };
  Kind kind = Kind::none;
  double factor = 1.0;
  // llama3 only: the wavelength band between which frequencies are blended.
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct LlamaConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_heads unless the config says otherwise
  int64_t max_position = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  // Per-frequency divisors of the rotary inverse frequencies ([head_dim / 2]; empty: none), as
  // GGUF files of Llama 3.1 carry the llama3 scaling (rope_freqs.weight).
  std::vector<float> rope_freq_factors;
  bool tie_word_embeddings = false;
  // What the architecture adds to Llama's (see kDecoderArchitectures in llama_config.cpp).
  std::string architecture = "llama";  // config.json's model_type, GGUF's general.architecture
  bool qkv_bias = false;               // q, k and v projections carry biases (Qwen2)
  // Sliding-window attention (Mistral): a position attends to itself and the window - 1 before
  // it, in the layers marked (all of them unless the config lists layer_types); 0: no window.
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;  // per layer; empty: every layer when sliding_window > 0
  bool layer_slides(int64_t layer) const {
    return sliding_window > 0 &&
           (sliding_layers.empty() || sliding_layers[static_cast<size_t>(layer)]);
  }

  // Throws ModelFileError naming the file and key for a missing, mistyped or inconsistent value.
  static LlamaConfig from_file(const std::string& config_json_path);
  static LlamaConfig from_json_text(const std::string& text, const std::string& origin);
};

}  // namespace sparq::models
