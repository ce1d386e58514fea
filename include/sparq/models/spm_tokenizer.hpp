// SentencePiece-style BPE, as Llama 2, TinyLlama and Mistral ship it (llama.cpp's "llama"
// tokenizer model; Hugging Face's BPE with byte_fallback over characters): special tokens are cut
// out of the text first; each other segment gets "▁" prepended and its spaces turned into "▁",
// then its characters are merged pair by pair, the best pair first (GGUF: the highest score of
// the merged piece; tokenizer.json: the lowest merge rank; ties to the left), and a piece that is
// not in the vocabulary (a character it lacks) becomes its UTF-8 bytes' <0xXX> tokens. Decoding
// turns "▁" back into spaces, byte tokens into bytes, and drops the one leading space the
// encoding added.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sparq {
class GgufFile;
}

namespace sparq::models {

class SpmTokenizer {
 public:
  // From a GGUF file's tokenizer.ggml.{model = llama, tokens, scores, token_type, bos/eos/unk
  // ids, add_space_prefix}. ModelFileError naming the file and key when they are missing or
  // inconsistent.
  static SpmTokenizer from_gguf(const GgufFile& file);
  static SpmTokenizer from_gguf_file(const std::string& path);
  // From a Hugging Face folder's tokenizer.json (model BPE with byte_fallback, normalizer
  // Prepend("▁") + Replace(" ", "▁") or a Metaspace pre-tokenizer; added tokens matched verbatim)
  // and, when present, tokenizer_config.json's bos_token / eos_token.
  static SpmTokenizer from_folder(const std::string& dir);

  std::vector<int32_t> encode(const std::string& text, bool add_bos = false) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }

 private:
  SpmTokenizer() = default;
  void finish(const std::string& origin);  // ids, byte tokens, specials; checks
  void encode_segment(const std::string& text, std::vector<int32_t>& out) const;
  // The cost of merging pieces a and b (lower merges first); nothing when they do not merge.
  std::optional<double> merge_cost(const std::string& a, const std::string& b) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<float> scores_;                              // GGUF: per token
  std::unordered_map<std::string, int32_t> ranks_;         // tokenizer.json: "left right" -> rank
  std::vector<int32_t> special_;                           // ids matched verbatim in the text
  std::vector<std::pair<std::string, int32_t>> specials_;  // text, id; longest first
  int32_t byte_ids_[256] = {};                             // the <0xXX> tokens (-1: none)
  int32_t bos_ = -1, eos_ = -1, unk_ = -1;
  bool add_space_prefix_ = true;
  bool use_scores_ = false;
};

}  // namespace sparq::models
