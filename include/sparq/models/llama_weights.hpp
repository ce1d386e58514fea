// The fp32 weights of a Llama-family decoder, taken from a Hugging Face folder's safetensors by
// their LlamaForCausalLM names (model.embed_tokens, model.layers.N.self_attn.{q,k,v,o}_proj,
// mlp.{gate,up,down}_proj, the two RMSNorms, model.norm, lm_head), every shape checked against
// config.json.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sparq/models/bert_weights.hpp"  // LinearWeights
#include "sparq/models/llama_config.hpp"
#include "sparq/types.hpp"

namespace sparq {
class SafetensorsModel;
class GgufFile;
}  // namespace sparq

namespace sparq::models {

struct LlamaLayerWeights {
  std::vector<float> attention_norm;  // [hidden]
  LinearWeights q, k, v, o;           // biases zero unless the architecture has them
  std::vector<float> mlp_norm;        // [hidden]
  LinearWeights gate, up, down;
};

// Where a model's weights come from one piece at a time (a file's tensors read and dequantized
// when asked), so that a model can be packed layer by layer without every fp32 weight in memory at
// once. The functions may be called from several threads at once; the file behind them must
// outlive the source.
struct LlamaWeightSource {
  std::function<std::vector<float>()> embed, final_norm;
  std::function<LlamaLayerWeights(int64_t layer)> layer;
  std::function<LinearWeights()> lm_head;  // an empty weight when tied to embed
};

struct LlamaWeights {
  std::vector<float> embed;  // [vocab x hidden]
  std::vector<LlamaLayerWeights> layers;
  std::vector<float> final_norm;  // [hidden]
  LinearWeights lm_head;          // [vocab x hidden]; empty weight when tied to embed
};

// Throws ModelFileError naming the folder and tensor for a missing tensor or a shape that
// disagrees with the config.
LlamaWeights load_llama_weights(const SafetensorsModel& model, const LlamaConfig& config);
LlamaWeightSource llama_weight_source(const SafetensorsModel& model, const LlamaConfig& config);
// Every piece of a source, at once.
LlamaWeights load_llama_weights(const LlamaWeightSource& source, const LlamaConfig& config);

// Magnitude-prunes every attention and MLP projection (q, k, v, o, gate, up, down) to `pattern`
// at `sparsity`; embeddings, norms and the head stay as they are. Pattern automatic prunes in
// 4x1 blocks; dense or sparsity 0 leaves the weights alone.
void prune_projections(LlamaWeights& weights, const Pattern& pattern, double sparsity);
void prune_projections(LlamaLayerWeights& layer, const Pattern& pattern, double sparsity);

// A GGUF file of llama architecture: the config from its llama.* metadata, the weights from
// token_embd / blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,
// ffn_down} / output_norm / output (absent: tied), dequantized to fp32. llama.cpp's converter
// stores attn_q and attn_k with each head's rows interleaved for its rotary layout; they are
// put back into Hugging Face's order here, so one rotary implementation serves both formats.
LlamaConfig llama_config_from_gguf(const GgufFile& file);
LlamaWeights load_llama_weights(const GgufFile& file, const LlamaConfig& config);
LlamaWeightSource llama_weight_source(const GgufFile& file, const LlamaConfig& config);

}  // namespace sparq::models
