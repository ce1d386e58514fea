// Rotary position embeddings as Hugging Face's Llama applies them ("rotate half": element i pairs
// with element i + d/2), with the config's theta and frequency scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "sparq/models/llama_config.hpp"

namespace sparq::models {

// inv_freq[i] = theta^(-2i/d) for i < d/2, then scaled: linear divides every frequency by the
// factor; llama3 divides the low frequencies, keeps the high ones and blends the band between;
// per-frequency divisors (GGUF rope_freqs.weight), when the config has them, divide each one.
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

// The cosines and sines of positions 0..positions-1, made once per session so that the
// per-token work is the rotation alone (every head of a token shares its angles).
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(const std::vector<float>& inv_freq, int64_t positions);
  // Rotates one head's vector v[2 * inv_freq.size()] for position `pos` (< positions) in place.
  void apply(float* v, int64_t pos) const;

 private:
  int64_t half_ = 0;
  std::vector<float> cos_, sin_;  // [positions x half]
};

}  // namespace sparq::models
