// The WordPiece tokenizer of BERT-family models, as Hugging Face's BertTokenizer: basic
// tokenization (control characters dropped, whitespace normalized, CJK characters split off,
// optional lower-casing with accents stripped through Unicode NFD, punctuation split), then
// greedy longest-match WordPiece with "##" continuations. Unicode properties come from ICU.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace sparq::models {

class WordPieceTokenizer {
 public:
  // vocab.txt: one token per line, the line number is the id. lower_case as the folder's
  // tokenizer_config.json says (do_lower_case). Throws ModelFileError for a missing file or a
  // vocabulary without [UNK], [CLS] and [SEP].
  static WordPieceTokenizer from_vocab_file(const std::string& path, bool lower_case);
  // The folder's vocab.txt and tokenizer_config.json (do_lower_case, default true).
  static WordPieceTokenizer from_folder(const std::string& dir);
  WordPieceTokenizer(std::vector<std::string> vocab, bool lower_case, const std::string& origin);

  // The word pieces of a UTF-8 text (invalid UTF-8 throws InvalidArgument).
  std::vector<std::string> tokenize(const std::string& text) const;
  // [CLS] pieces [SEP] as ids, the pieces cut so that the result has at most max_tokens ids.
  std::vector<int32_t> encode(const std::string& text, int64_t max_tokens = 512) const;
  int32_t id(const std::string& token) const;  // [UNK]'s id for an unknown token

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }

 private:
  std::vector<std::string> basic_tokens(const std::string& text) const;
  void word_pieces(const std::string& word, std::vector<std::string>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> ids_;
  bool lower_case_ = true;
  int32_t unk_ = 0, cls_ = 0, sep_ = 0;
};

}  // namespace sparq::models
