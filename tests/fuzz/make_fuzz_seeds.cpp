// Writes the fuzzers' seed corpora with sparq's own writers (small valid inputs of every kind):
//   make_fuzz_seeds OUT_DIR [GGUF_FIXTURE]
// OUT_DIR/{safetensors,gguf,config,tokenizers}/ receive the seeds; GGUF_FIXTURE (a GGUF holding
// every quant type, tests/fixtures/ggml_quants.gguf) is copied into the gguf seeds.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR [GGUF_FIXTURE]\n");
    return 2;
  }
  const fs::path out = argv[1];
  for (const char* d : {"safetensors", "safetensors_index", "gguf", "config", "tokenizers"})
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
  return 0;
}
