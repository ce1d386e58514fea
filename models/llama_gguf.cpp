#include <algorithm>
#include <cmath>

#include "models/decoder_architecture.hpp"
#include "sparq/error.hpp"
#include "sparq/models/llama_weights.hpp"
#include "src/gguf.hpp"

namespace sparq::models {
namespace {

// The tensor as fp32 [rows x cols] (ggml dims {cols, rows}), or a vector (dims {n}).
std::vector<float> get(const GgufFile& g, const std::string& name,
                       const std::vector<int64_t>& ggml_dims) {
  const GgufTensor& t = g.tensor(name);
  if (t.dims != ggml_dims) {
    auto dims = [](const std::vector<int64_t>& s) {
      std::string out = "[";
      for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
      return out + "]";
    };
    throw ModelFileError(g.path() + ": tensor '" + name + "' has ggml dims " + dims(t.dims) +
                         "; the metadata needs " + dims(ggml_dims));
  }
  std::vector<float> values = t.to_f32();
  g.release(t);
  return values;
}

// name: the tensor without ".weight"; with_bias: the architecture's projection has a bias, which
// must be there (otherwise a bias in the file is refused rather than dropped).
LinearWeights linear(const GgufFile& g, const std::string& name, int64_t out, int64_t in,
                     bool with_bias = false) {
  LinearWeights l;
  l.out = out;
  l.in = in;
  l.weight = get(g, name + ".weight", {in, out});
  if (with_bias) {
    l.bias = get(g, name + ".bias", {out});
  } else {
    if (g.contains(name + ".bias"))
      throw ModelFileError(g.path() + ": tensor '" + name +
                           ".bias': this projection has no bias in the architecture, sparq does "
                           "not read one");
    l.bias.assign(static_cast<size_t>(out), 0.0f);
  }
  return l;
}

// Each head's rows come as (d/2 pairs) x 2; Hugging Face's order is 2 x (d/2).
void unpermute_heads(LinearWeights& l, int64_t heads) {
  const int64_t d = l.out / heads, half = d / 2;
  std::vector<float> out(l.weight.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::copy_n(l.weight.data() + (h * d + 2 * i + j) * l.in, l.in,
                    out.data() + (h * d + j * half + i) * l.in);
  l.weight.swap(out);
}

}  // namespace

LlamaConfig llama_config_from_gguf(const GgufFile& g) {
  const std::string arch = g.get_string("general.architecture");
  const DecoderArchitecture* a = find_decoder_architecture(arch);
  if (!a || !a->gguf)
    throw ModelFileError(g.path() + ": general.architecture is '" + arch +
                         "'; sparq reads llama and qwen2 GGUF files");
  const std::string k = arch + ".";  // the architecture's metadata keys
  auto count = [&](const std::string& key, uint64_t max) {
    const uint64_t v = g.get_uint(key);
    if (v == 0 || v > max)
      throw ModelFileError(g.path() + ": " + key + " is " + std::to_string(v) + " (1.." +
                           std::to_string(max) + " expected)");
    return static_cast<int64_t>(v);
  };
  LlamaConfig c;
  c.hidden_size = count(k + "embedding_length", 1 << 16);
  c.intermediate_size = count(k + "feed_forward_length", 1 << 19);
  c.num_layers = count(k + "block_count", 1024);
  c.num_heads = count(k + "attention.head_count", 1 << 16);
  c.num_kv_heads = g.has(k + "attention.head_count_kv")
                       ? count(k + "attention.head_count_kv", 1 << 16)
                       : c.num_heads;
  c.head_dim = g.has(k + "rope.dimension_count") ? count(k + "rope.dimension_count", 1 << 16)
                                                 : c.hidden_size / c.num_heads;
  c.max_position = count(k + "context_length", 1 << 24);
  c.vocab_size = g.has(k + "vocab_size")
                     ? count(k + "vocab_size", 1 << 22)
                     : static_cast<int64_t>(g.get_strings("tokenizer.ggml.tokens").size());
  c.rms_norm_eps = g.get_float(k + "attention.layer_norm_rms_epsilon");
  if (g.has(k + "rope.freq_base")) c.rope_theta = g.get_float(k + "rope.freq_base");
  if (g.has(k + "rope.scaling.type")) {
    const std::string type = g.get_string(k + "rope.scaling.type");
    if (type == "linear") {
      c.rope_scaling.kind = RopeScaling::Kind::linear;
      c.rope_scaling.factor = g.get_float(k + "rope.scaling.factor");
    } else if (type != "none") {
      throw ModelFileError(g.path() + ": " + k + "rope.scaling.type '" + type +
                           "'; sparq reads none and linear from GGUF");
    }
  }
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps <= 1) || !(c.rope_theta > 1))
    throw ModelFileError(g.path() + ": implausible rms epsilon or rope base");
  if (c.num_heads % c.num_kv_heads != 0 || c.head_dim % 2 != 0)
    throw ModelFileError(g.path() + ": head counts or head size do not fit together");
  if (g.contains("rope_freqs.weight")) {
    // Llama 3.1's scaling, one divisor per rotary frequency.
    const GgufTensor& t = g.tensor("rope_freqs.weight");
    if (t.dims != std::vector<int64_t>{c.head_dim / 2})
      throw ModelFileError(g.path() + ": rope_freqs.weight has " + std::to_string(t.dims.size()) +
                           " dimension(s) of " + std::to_string(t.dims.empty() ? 0 : t.dims[0]) +
                           " values; one of head_dim / 2 = " + std::to_string(c.head_dim / 2) +
                           " expected");
    c.rope_freq_factors = t.to_f32();
    for (float f : c.rope_freq_factors)
      if (!(f > 0.0f) || !std::isfinite(f))
        throw ModelFileError(g.path() + ": rope_freqs.weight holds " + std::to_string(f) +
                             " (positive finite divisors expected)");
  }
  c.tie_word_embeddings = !g.contains("output.weight");
  c.architecture = a->name;
  c.qkv_bias = a->qkv_bias;
  return c;
}

LlamaWeightSource llama_weight_source(const GgufFile& g, const LlamaConfig& c) {
  const int64_t h = c.hidden_size;
  const DecoderArchitecture* arch = find_decoder_architecture(c.architecture);
  if (!arch || !arch->gguf)
    throw InvalidArgument("llama_weight_source: the config's architecture '" + c.architecture +
                          "' has no GGUF reading");
  // (No architecture has both interleaved q/k rows and q/k biases; unpermute_heads moves rows.)
  const bool interleaved = arch->gguf_interleaved_qk;
  LlamaWeightSource s;
  s.embed = [&g, c, h] { return get(g, "token_embd.weight", {h, c.vocab_size}); };
  s.final_norm = [&g, h] { return get(g, "output_norm.weight", {h}); };
  s.layer = [&g, c, h, interleaved](int64_t n) {
    const int64_t i = c.intermediate_size, d = c.head_dim;
    const std::string p = "blk." + std::to_string(n) + ".";
    LlamaLayerWeights l;
    l.attention_norm = get(g, p + "attn_norm.weight", {h});
    l.q = linear(g, p + "attn_q", c.num_heads * d, h, c.qkv_bias);
    l.k = linear(g, p + "attn_k", c.num_kv_heads * d, h, c.qkv_bias);
    l.v = linear(g, p + "attn_v", c.num_kv_heads * d, h, c.qkv_bias);
    if (interleaved) {
      unpermute_heads(l.q, c.num_heads);
      unpermute_heads(l.k, c.num_kv_heads);
    }
    l.o = linear(g, p + "attn_output", h, c.num_heads * d);
    l.mlp_norm = get(g, p + "ffn_norm.weight", {h});
    l.gate = linear(g, p + "ffn_gate", i, h);
    l.up = linear(g, p + "ffn_up", i, h);
    l.down = linear(g, p + "ffn_down", h, i);
    return l;
  };
  s.lm_head = [&g, c, h] {
    return g.contains("output.weight") ? linear(g, "output", c.vocab_size, h) : LinearWeights{};
  };
  return s;
}

LlamaWeights load_llama_weights(const GgufFile& g, const LlamaConfig& c) {
  return load_llama_weights(llama_weight_source(g, c), c);
}

}  // namespace sparq::models
