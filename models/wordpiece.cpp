#include "sparq/models/wordpiece.hpp"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparq/error.hpp"

namespace sparq::models {
namespace {

bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// BertTokenizer's definitions: tab, newline and carriage return count as whitespace, not control.
bool is_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const auto t = u_charType(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR;
}
// ASCII non-alphanumerics count as punctuation (as "$" and "^"), and every Unicode P* character.
bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  const auto t = u_charType(c);
  return t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION || t == U_END_PUNCTUATION ||
         t == U_CONNECTOR_PUNCTUATION || t == U_OTHER_PUNCTUATION || t == U_INITIAL_PUNCTUATION ||
         t == U_FINAL_PUNCTUATION;
}

void append_utf8(std::string& s, UChar32 c) { icu::UnicodeString(c).toUTF8String(s); }

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, bool lower_case,
                                       const std::string& origin)
    : vocab_(std::move(vocab)), lower_case_(lower_case) {
  for (size_t i = 0; i < vocab_.size(); ++i)
    ids_.emplace(vocab_[i], static_cast<int32_t>(i));  // the first of duplicates wins
  for (const char* special : {"[UNK]", "[CLS]", "[SEP]"})
    if (!ids_.count(special))
      throw ModelFileError(origin + ": the vocabulary has no " + special + " token");
  unk_ = ids_.at("[UNK]");
  cls_ = ids_.at("[CLS]");
  sep_ = ids_.at("[SEP]");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path, bool lower_case) {
  std::ifstream in(path);
  if (!in) throw ModelFileError(path + ": cannot open");
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    vocab.push_back(line);
  }
  return WordPieceTokenizer(std::move(vocab), lower_case, path);
}

WordPieceTokenizer WordPieceTokenizer::from_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  bool lower = true;
  const fs::path config = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config)) {
    try {
      std::ifstream in(config);
      const auto j = nlohmann::json::parse(in);
      if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean())
        lower = j["do_lower_case"].get<bool>();
    } catch (const nlohmann::json::exception& e) {
      throw ModelFileError(config.string() + ": not valid JSON: " + e.what());
    }
  }
  return from_vocab_file((fs::path(dir) / "vocab.txt").string(), lower);
}

std::vector<std::string> WordPieceTokenizer::basic_tokens(const std::string& text) const {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  if (U_FAILURE(status)) throw NotSupported("ICU's NFD normalizer is unavailable");
  // Decode, validating the UTF-8.
  std::vector<UChar32> chars;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const auto length = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < length;) {
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0)
      throw InvalidArgument("tokenizer: the text is not valid UTF-8 (byte " +
                            std::to_string(i - 1) + ")");
    chars.push_back(c);
  }
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (UChar32 c : chars) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      flush();
      continue;
    }
    if (is_cjk(c)) {
      flush();
      append_utf8(current, c);
      flush();
      continue;
    }
    icu::UnicodeString piece(c);
    if (lower_case_) {
      piece.toLower();
      // Strip accents: decompose, drop the nonspacing marks.
      icu::UnicodeString decomposed = nfd->normalize(piece, status);
      if (U_FAILURE(status)) throw NotSupported("ICU normalization failed");
      piece.remove();
      for (int32_t k = 0; k < decomposed.length();) {
        const UChar32 d = decomposed.char32At(k);
        if (u_charType(d) != U_NON_SPACING_MARK) piece.append(d);
        k += U16_LENGTH(d);
      }
    }
    for (int32_t k = 0; k < piece.length();) {
      const UChar32 d = piece.char32At(k);
      k += U16_LENGTH(d);
      if (is_punctuation(d)) {
        flush();
        append_utf8(current, d);
        flush();
      } else {
        append_utf8(current, d);
      }
    }
  }
  flush();
  return tokens;
}

void WordPieceTokenizer::word_pieces(const std::string& word, std::vector<std::string>& out) const {
  // Code point boundaries of the word (pieces never split a character).
  std::vector<size_t> bounds;
  const auto* bytes = reinterpret_cast<const uint8_t*>(word.data());
  const auto length = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < length;) {
    bounds.push_back(static_cast<size_t>(i));
    U8_FWD_1(bytes, i, length);
  }
  bounds.push_back(word.size());
  if (bounds.size() - 1 > 100) {  // BertTokenizer's max_input_chars_per_word
    out.push_back("[UNK]");
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start + 1 < bounds.size()) {
    size_t end = bounds.size() - 1;
    bool found = false;
    for (; end > start; --end) {
      std::string candidate = word.substr(bounds[start], bounds[end] - bounds[start]);
      if (start > 0) candidate = "##" + candidate;
      if (ids_.count(candidate)) {
        pieces.push_back(std::move(candidate));
        found = true;
        break;
      }
    }
    if (!found) {
      out.push_back("[UNK]");
      return;
    }
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const auto& word : basic_tokens(text)) word_pieces(word, out);
  return out;
}

int32_t WordPieceTokenizer::id(const std::string& token) const {
  const auto it = ids_.find(token);
  return it == ids_.end() ? unk_ : it->second;
}

std::vector<int32_t> WordPieceTokenizer::encode(const std::string& text, int64_t max_tokens) const {
  if (max_tokens < 2)
    throw InvalidArgument("tokenizer: max_tokens must be >= 2 ([CLS] and [SEP]), got " +
                          std::to_string(max_tokens));
  std::vector<int32_t> ids{cls_};
  for (const auto& piece : tokenize(text)) {
    if (static_cast<int64_t>(ids.size()) + 1 >= max_tokens) break;
    ids.push_back(id(piece));
  }
  ids.push_back(sep_);
  return ids;
}

}  // namespace sparq::models
