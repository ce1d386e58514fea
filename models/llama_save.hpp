// Writes a Llama-family decoder as a Hugging Face folder (config.json + model.safetensors,
// LlamaForCausalLM naming), so that other runtimes get exactly the weights sparq runs:
// sparq-eval --save hands synthetic (pruned) decoders to the llama.cpp comparison in bench/peers.
#pragma once

#include <string>

#include "sparq/models/llama_config.hpp"
#include "sparq/models/llama_weights.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {

// The config.json text that LlamaConfig::from_json_text reads back as `config`.
std::string llama_config_json(const LlamaConfig& config);

// Creates `dir` if needed; weights are stored as `dtype` (a float dtype). Throws ModelFileError
// when the folder cannot be written, InvalidArgument when weights and config disagree.
void save_llama_folder(const std::string& dir, const LlamaConfig& config,
                       const LlamaWeights& weights, TensorDType dtype = TensorDType::f32);

}  // namespace sparq::models
