// The Llama-family architectures sparq runs, and what each adds to Llama's: one row per
// architecture, so that the next one is a row here (and its tensor names where they differ), not
// edits across the config reader, the GGUF reader and the model.
#pragma once

#include <string>

namespace sparq::models {

struct DecoderArchitecture {
  const char* name;          // config.json's model_type; GGUF's general.architecture
  bool qkv_bias;             // q, k and v projections carry biases
  bool gguf;                 // GGUF files of this architecture are read (keys "<name>.*")
  bool gguf_interleaved_qk;  // llama.cpp's converter interleaves q/k's rotary halves
};

inline constexpr DecoderArchitecture kDecoderArchitectures[] = {
    {"llama", false, true, true},      // Llama 1-3.2, TinyLlama, SmolLM2 (Mistral GGUFs too)
    {"mistral", false, false, false},  // Mistral folders (no window shorter than the context)
    {"qwen2", true, true, false},      // Qwen2 / Qwen2.5: biases on q, k, v; NeoX rope in GGUF
};

// The row of `name`, or null.
inline const DecoderArchitecture* find_decoder_architecture(const std::string& name) {
  for (const DecoderArchitecture& a : kDecoderArchitectures)
    if (name == a.name) return &a;
  return nullptr;
}

}  // namespace sparq::models
