// Writes a tiny random BERT folder (config.json, vocab.txt, tokenizer_config.json,
// model.safetensors with the "bert." prefix, BF16 weights) for the command-line tools' tests.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "src/safetensors.hpp"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) return 2;
  const fs::path dir = argv[1];
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int64_t vocab = 40, h = 16, layers = 2, inter = 32, positions = 32;
  std::ofstream(dir / "config.json")
      << R"({"model_type":"bert","vocab_size":40,"hidden_size":16,"num_hidden_layers":2,)"
      << R"("num_attention_heads":2,"intermediate_size":32,"max_position_embeddings":32,)"
      << R"("type_vocab_size":2,"hidden_act":"gelu"})";
  std::ofstream(dir / "tokenizer_config.json") << R"({"do_lower_case":true})";
  {
    std::ofstream v(dir / "vocab.txt");
    v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n";
    for (int i = 4; i < vocab; ++i) v << "tok" << i << "\n";
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<std::vector<float>> store;
  std::vector<sparq::TensorToWrite> tensors;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    store.emplace_back(static_cast<size_t>(n));
    for (float& x : store.back()) x = normal(rng);
    tensors.push_back({"bert." + name, sparq::TensorDType::bf16, shape, nullptr});
  };
  add("embeddings.word_embeddings.weight", {vocab, h});
  add("embeddings.position_embeddings.weight", {positions, h});
  add("embeddings.token_type_embeddings.weight", {2, h});
  add("embeddings.LayerNorm.weight", {h});
  add("embeddings.LayerNorm.bias", {h});
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* q : {"attention.self.query", "attention.self.key", "attention.self.value",
                          "attention.output.dense"}) {
      add(p + q + ".weight", {h, h});
      add(p + q + ".bias", {h});
    }
    add(p + "intermediate.dense.weight", {inter, h});
    add(p + "intermediate.dense.bias", {inter});
    add(p + "output.dense.weight", {h, inter});
    add(p + "output.dense.bias", {h});
    for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      add(p + n + ".weight", {h});
      add(p + n + ".bias", {h});
    }
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].values = store[i].data();
  sparq::write_safetensors((dir / "model.safetensors").string(), tensors);
  return 0;
}
