// Byte-level BPE, as GPT-2, SmolLM2, Llama 3 and Qwen2 use it (Hugging Face's ByteLevel
// pre-tokenizer, alone or after a Split by regex; llama.cpp's "gpt2" tokenizer model): special
// tokens are cut out of the text first; the rest is split by the vocabulary's pre-tokenization
// regex (GPT-2's, Llama 3's, Qwen2's or the one tokenizer.json gives; Unicode letter and number
// classes, matched by PCRE2), each piece's bytes are mapped to GPT-2's printable byte alphabet and
// merged by rank. Decoding maps the pieces back to bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace sparq {
class GgufFile;
}

namespace sparq::models {

// How a byte-level BPE vocabulary splits text before merging.
struct BpeSplit {
  // The pre-tokenization regex (PCRE2 syntax, UTF and Unicode properties on). Text between two
  // matches, if any, is a piece of its own (Hugging Face's Split with behavior Isolated).
  std::string pattern;
  // A piece that is itself a vocabulary token is taken whole, without merging (Llama 3's
  // ignore_merges).
  bool ignore_merges = false;

  static BpeSplit gpt2();    // GPT-2, SmolLM2 (llama.cpp's pre "default", "gpt2", "smollm")
  static BpeSplit llama3();  // Llama 3 / 3.1 / 3.2 (pre "llama-bpe", "llama3")
  static BpeSplit qwen2();   // Qwen2 / Qwen2.5 (pre "qwen2"): Llama 3's, one digit per piece
};

class BpeTokenizer {
 public:
  // From a GGUF file's tokenizer.ggml.{model = gpt2, pre, tokens, merges, token_type, bos/eos
  // ids}; pre names the split (see BpeSplit; others are refused by name). Throws ModelFileError
  // naming the file and key when they are missing or inconsistent.
  static BpeTokenizer from_gguf(const GgufFile& file);
  static BpeTokenizer from_gguf_file(const std::string& path);
  // From a Hugging Face folder's tokenizer.json (model BPE over GPT-2's byte alphabet, the
  // ByteLevel pre-tokenizer with its regex, or a Split by the file's regex before a ByteLevel
  // without one; added tokens matched verbatim) and, when present,
  // tokenizer_config.json's bos_token / eos_token. Throws ModelFileError naming the file and what
  // is unsupported (SentencePiece-style Metaspace / byte-fallback vocabularies, other
  // pre-tokenizers) or inconsistent.
  static BpeTokenizer from_folder(const std::string& dir);
  // tokens: the vocabulary (id = index) in the byte alphabet; merges: "left right" by rank;
  // special: the ids of tokens that are matched verbatim in the text (control tokens).
  // ModelFileError naming `origin` when split.pattern does not compile.
  BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges,
               const std::vector<int32_t>& special, int32_t bos, int32_t eos,
               const std::string& origin, const BpeSplit& split = BpeSplit::gpt2());
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  // The ids of a UTF-8 text (InvalidArgument for invalid UTF-8), BOS first when asked.
  std::vector<int32_t> encode(const std::string& text, bool add_bos = false) const;
  // The text of ids (special tokens as their text); InvalidArgument for ids out of range.
  std::string decode(const std::vector<int32_t>& ids) const;
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  int32_t bos() const { return bos_; }
  int32_t eos() const { return eos_; }

 private:
  // from_folder's reading (which guards the JSON library's own type errors around it).
  static BpeTokenizer read_folder(const std::string& dir, const std::string& origin);
  void encode_piece(const std::string& bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> ranks_;         // "left right" -> rank
  std::vector<std::pair<std::string, int32_t>> specials_;  // text, id; longest first
  int32_t bos_ = -1, eos_ = -1;
  bool ignore_merges_ = false;
  struct Regex;
  std::unique_ptr<Regex> regex_;
};

}  // namespace sparq::models
