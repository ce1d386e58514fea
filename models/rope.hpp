// Rotary position embeddings as Hugging Face's Llama applies them ("rotate half": element i pairs
// with element i + d/2), with the config's theta and frequency scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "sparq/models/llama_config.hpp"

namespace sparq::models {

// inv_freq[i] = theta^(-2i/d) for i < d/2, then scaled: linear divides every frequency by the
// factor; llama3 divides the low frequencies, keeps the high ones and blends the band between.
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

// Rotates one head's vector v[d] for position `pos` in place.
void apply_rope(float* v, int64_t d, int64_t pos, const std::vector<float>& inv_freq);

}  // namespace sparq::models
