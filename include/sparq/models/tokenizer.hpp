// A decoder's tokenizer, whichever kind its files hold: byte-level BPE (GPT-2, SmolLM2, Llama 3,
// Qwen2; BpeTokenizer) or SentencePiece-style BPE (Llama 2, TinyLlama, Mistral; SpmTokenizer),
// chosen from the GGUF's tokenizer.ggml.model or the tokenizer.json's model.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "sparq/models/bpe_tokenizer.hpp"
#include "sparq/models/spm_tokenizer.hpp"

namespace sparq::models {

class Tokenizer {
 public:
  // tokenizer.ggml.model "gpt2" -> BpeTokenizer, "llama" -> SpmTokenizer; ModelFileError naming
  // any other.
  static Tokenizer from_gguf(const GgufFile& file);
  static Tokenizer from_gguf_file(const std::string& path);
  // tokenizer.json: a BPE model with byte_fallback -> SpmTokenizer, else BpeTokenizer.
  static Tokenizer from_folder(const std::string& dir);

  std::vector<int32_t> encode(const std::string& text, bool add_bos = false) const {
    return std::visit([&](const auto& t) { return t.encode(text, add_bos); }, kind_);
  }
  std::string decode(const std::vector<int32_t>& ids) const {
    return std::visit([&](const auto& t) { return t.decode(ids); }, kind_);
  }
  int32_t bos() const {
    return std::visit([](const auto& t) { return t.bos(); }, kind_);
  }
  int32_t eos() const {
    return std::visit([](const auto& t) { return t.eos(); }, kind_);
  }
  bool sentencepiece() const { return std::holds_alternative<SpmTokenizer>(kind_); }
  // The ids that end a generation: EOS, and where the files name them, the end-of-turn and
  // end-of-message tokens (GGUF tokenizer.ggml.eot_token_id / eom_token_id; a folder's
  // generation_config.json eos_token_id, one id or a list, as Llama 3 Instruct gives
  // <|end_of_text|>, <|eom_id|> and <|eot_id|>). ModelFileError for an id outside the vocabulary.
  const std::vector<int32_t>& end_of_generation() const { return end_ids_; }
  bool ends_generation(int32_t id) const;

 private:
  template <typename T>
  explicit Tokenizer(T t) : kind_(std::move(t)) {}
  int64_t vocab_size() const;
  // Adds id to end_ids_ (once; -1: none); ModelFileError naming `origin` outside the vocabulary.
  void add_end(int64_t id, const std::string& origin);
  std::variant<BpeTokenizer, SpmTokenizer> kind_;
  std::vector<int32_t> end_ids_;
};

}  // namespace sparq::models
