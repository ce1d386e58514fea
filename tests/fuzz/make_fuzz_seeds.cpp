// Writes the fuzzers' seed corpora with sparq's own writers (small valid inputs of every kind):
//   make_fuzz_seeds OUT_DIR [GGUF_FIXTURE]
// OUT_DIR/{safetensors,gguf,config,tokenizers}/ receive the seeds; GGUF_FIXTURE (a GGUF holding
// every quant type, tests/fixtures/ggml_quants.gguf) is copied into the gguf seeds.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "models/bert_save.hpp"
#include "models/llama_save.hpp"
#include "src/gguf.hpp"
#include "src/safetensors.hpp"

namespace fs = std::filesystem;
using namespace sparq;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A model-folder seed: two bytes of config length, config.json, then model.safetensors made from
// `shapes` (name, shape; values small and varied).
void write_model_seed(const fs::path& path, const std::string& config,
                      const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes) {
  std::vector<std::vector<float>> store;
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    store.emplace_back(static_cast<size_t>(n));
    for (size_t i = 0; i < store.back().size(); ++i)
      store.back()[i] = 0.01f * static_cast<float>(static_cast<int>(i % 7) - 3);
    tensors.push_back({name, TensorDType::f32, shape, nullptr});
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].values = store[i].data();
  const fs::path st = fs::path(path).replace_extension(".tmp");
  write_safetensors(st.string(), tensors);
  const std::string weights = read_bytes(st);
  fs::remove(st);
  std::string seed;
  seed += static_cast<char>(config.size() & 0xff);
  seed += static_cast<char>(config.size() >> 8);
  write_text(path, seed + config + weights);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR [GGUF_FIXTURE]\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d :
       {"safetensors", "safetensors_index", "gguf", "config", "tokenizers", "model_folder"})
    fs::create_directories(out / d);

  const std::vector<float> values = {1.0f, -2.5f, 0.0f, 3.25f, -0.125f, 7.0f};
  const int8_t bytes[6] = {1, -2, 3, -4, 5, -6};
  write_safetensors((out / "safetensors" / "floats.safetensors").string(),
                    {{"a.weight", TensorDType::f32, {2, 3}, values.data()},
                     {"b.weight", TensorDType::f16, {3, 2}, values.data()},
                     {"c.weight", TensorDType::bf16, {6}, values.data()},
                     {"d", TensorDType::i8, {6}, nullptr, bytes}},
                    {{"format", "pt"}});
  write_safetensors((out / "safetensors" / "one.safetensors").string(),
                    {{"x", TensorDType::f64, {1}, values.data()}});
  // The index of fuzz_safetensors_index's two shards.
  write_text(out / "safetensors_index" / "index.json",
             R"({"metadata": {"total_size": 54}, "weight_map": {"a.weight":
"model-00001-of-00002.safetensors", "b.bias": "model-00001-of-00002.safetensors", "c.weight":
"model-00002-of-00002.safetensors"}})");

  const std::vector<std::string> tokens = {"h",    "e",     "l",        "o", "he",           "ll",
                                           "hell", "hello", "\xc4\xa0", "w", "<|endoftext|>"};
  const std::vector<std::string> merges = {"h e", "l l", "he ll", "hell o"};
  std::vector<int32_t> types(tokens.size(), 1);
  types.back() = 3;
  write_gguf((out / "gguf" / "tokenizer.gguf").string(),
             {{"general.architecture", gguf_string("llama")},
              {"llama.context_length", gguf_uint32(64)},
              {"llama.rope.freq_base", gguf_float32(10000.0f)},
              {"tokenizer.ggml.model", gguf_string("gpt2")},
              {"tokenizer.ggml.pre", gguf_string("gpt2")},
              {"tokenizer.ggml.tokens", gguf_strings(tokens)},
              {"tokenizer.ggml.merges", gguf_strings(merges)},
              {"tokenizer.ggml.token_type", gguf_int32s(types)},
              {"tokenizer.ggml.eos_token_id", gguf_uint32(10)}},
             {{"token_embd.weight", {3, 2}, values.data()}});
  if (argc > 2)
    fs::copy_file(argv[2], out / "gguf" / "quants.gguf", fs::copy_options::overwrite_existing);

  models::BertConfig bert;
  bert.vocab_size = 30;
  bert.hidden_size = 8;
  bert.num_layers = 1;
  bert.num_heads = 2;
  bert.intermediate_size = 16;
  bert.max_position = 32;
  bert.type_vocab_size = 2;
  write_text(out / "config" / "bert.json", models::bert_config_json(bert));
  models::LlamaConfig llama;
  llama.vocab_size = 40;
  llama.hidden_size = 32;
  llama.intermediate_size = 48;
  llama.num_layers = 2;
  llama.num_heads = 4;
  llama.num_kv_heads = 2;
  llama.head_dim = 8;
  llama.max_position = 64;
  write_text(out / "config" / "llama.json", models::llama_config_json(llama));

  // Model folders: a one-layer BERT and Llama of width 8.
  {
    const int64_t h = 8, inter = 16, vocab = 12;
    models::BertConfig b;
    b.vocab_size = vocab;
    b.hidden_size = h;
    b.num_layers = 1;
    b.num_heads = 2;
    b.intermediate_size = inter;
    b.max_position = 8;
    b.type_vocab_size = 2;
    std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
        {"embeddings.word_embeddings.weight", {vocab, h}},
        {"embeddings.position_embeddings.weight", {8, h}},
        {"embeddings.token_type_embeddings.weight", {2, h}},
        {"embeddings.LayerNorm.weight", {h}},
        {"embeddings.LayerNorm.bias", {h}}};
    const std::string p = "encoder.layer.0.";
    for (const char* q : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      t.push_back({p + q + ".weight", {h, h}});
      t.push_back({p + q + ".bias", {h}});
    }
    t.push_back({p + "intermediate.dense.weight", {inter, h}});
    t.push_back({p + "intermediate.dense.bias", {inter}});
    t.push_back({p + "output.dense.weight", {h, inter}});
    t.push_back({p + "output.dense.bias", {h}});
    for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      t.push_back({p + n + ".weight", {h}});
      t.push_back({p + n + ".bias", {h}});
    }
    write_model_seed(out / "model_folder" / "bert", models::bert_config_json(b), t);
    models::LlamaConfig l;
    l.vocab_size = vocab;
    l.hidden_size = h;
    l.intermediate_size = inter;
    l.num_layers = 1;
    l.num_heads = 2;
    l.num_kv_heads = 1;
    l.head_dim = 4;
    l.max_position = 16;
    const std::string q = "model.layers.0.";
    write_model_seed(out / "model_folder" / "llama", models::llama_config_json(l),
                     {{"model.embed_tokens.weight", {vocab, h}},
                      {q + "input_layernorm.weight", {h}},
                      {q + "self_attn.q_proj.weight", {8, h}},
                      {q + "self_attn.k_proj.weight", {4, h}},
                      {q + "self_attn.v_proj.weight", {4, h}},
                      {q + "self_attn.o_proj.weight", {h, 8}},
                      {q + "post_attention_layernorm.weight", {h}},
                      {q + "mlp.gate_proj.weight", {inter, h}},
                      {q + "mlp.up_proj.weight", {inter, h}},
                      {q + "mlp.down_proj.weight", {h, inter}},
                      {"model.norm.weight", {h}},
                      {"lm_head.weight", {vocab, h}}});
  }

  // Tokenizer seeds: the file, a 0xff separator, the text.
  const std::string text =
      "\xff"
      "Hello, world! hello 123 \xc3\xa9t\xc3\xa9 <|endoftext|>";
  write_text(out / "tokenizers" / "vocab.txt",
             "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n,\n!\n" + text);
  write_text(out / "tokenizers" / "tokenizer.json",
             R"({"model": {"type": "BPE", "vocab": {"h": 0, "e": 1, "l": 2, "o": 3, "he": 4,
"ll": 5, "hell": 6, "hello": 7, "\u0120": 8, "w": 9}, "merges": ["h e", "l l", "he ll",
"hell o"]}, "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": 10,
"content": "<|endoftext|>", "special": true}]})" +
                 text);
  // Llama 3 / Qwen2's form: a Split by regex before ByteLevel, ignore_merges.
  write_text(out / "tokenizers" / "tokenizer_split.json",
             R"({"model": {"type": "BPE", "ignore_merges": true, "vocab": {"h": 0, "e": 1,
"l": 2, "o": 3, "he": 4, "1": 5, "2": 6, "12": 7}, "merges": ["h e", "1 2"]},
"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex":
"(?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+(?!\S)|\s+"},
"behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false,
"use_regex": false}]}})" +
                 text);
  // SentencePiece's form: byte fallback, "▁" for spaces.
  write_text(out / "tokenizers" / "tokenizer_spm.json",
             R"({"model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>", "vocab":
{"<unk>": 0, "<s>": 1, "</s>": 2, "<0x41>": 3, "▁": 4, "h": 5, "e": 6, "he": 7,
"▁he": 8}, "merges": ["h e", "▁ he"]}, "normalizer": {"type": "Sequence",
"normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern":
{"String": " "}, "content": "▁"}]}, "added_tokens": [{"id": 1, "content": "<s>"}]})" +
                 text);
  return 0;
}
