#include "sparq/models/bpe_tokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "models/special_tokens.hpp"
#include "sparq/error.hpp"
#include "src/gguf.hpp"

namespace sparq::models {
namespace {

// GPT-2's pre-tokenization: contractions, letters, numbers, other symbols (each with an optional
// leading space), then whitespace runs (leaving one space to the next piece when it is followed
// by a non-space).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3's (its tokenizer.json's Split regex): contractions in any case, letters with one
// leading non-letter non-digit (not a line break), up to 3 digits, symbols with their trailing
// line breaks, line-break runs, then whitespace as GPT-2's. Qwen2's is the same with one digit.
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's byte alphabet: printable Latin-1 bytes stand for themselves, the other 68 bytes are
// shifted to code points 256..323, so that every byte is a visible character.
struct ByteAlphabet {
  std::string of_byte[256];                       // UTF-8 of each byte's character
  std::unordered_map<uint32_t, uint8_t> byte_of;  // code point -> byte
  ByteAlphabet() {
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : 256u + shifted++;
      std::string utf8;
      if (cp < 0x80) {
        utf8 += static_cast<char>(cp);
      } else {
        utf8 += static_cast<char>(0xC0 | (cp >> 6));
        utf8 += static_cast<char>(0x80 | (cp & 0x3F));
      }
      of_byte[b] = utf8;
      byte_of[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

}  // namespace

BpeSplit BpeSplit::gpt2() { return {kGpt2Pattern, false}; }
BpeSplit BpeSplit::llama3() { return {kLlama3Pattern, true}; }
BpeSplit BpeSplit::qwen2() { return {kQwen2Pattern, false}; }

struct BpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer::BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::string>& merges,
                           const std::vector<int32_t>& special, int32_t bos, int32_t eos,
                           const std::string& origin, const BpeSplit& split)
    : tokens_(std::move(tokens)),
      bos_(bos),
      eos_(eos),
      ignore_merges_(split.ignore_merges),
      regex_(std::make_unique<Regex>()) {
  if (tokens_.empty() || tokens_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    throw ModelFileError(origin + ": an empty or oversized vocabulary");
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));
  for (size_t r = 0; r < merges.size(); ++r) {
    if (merges[r].find(' ') == std::string::npos)
      throw ModelFileError(origin + ": merge " + std::to_string(r) + " ('" + merges[r] +
                           "') is not two pieces separated by a space");
    ranks_.emplace(merges[r], static_cast<int32_t>(r));
  }
  specials_ = special_tokens(tokens_, special, origin);
  for (int32_t id : {bos, eos})
    if (id < -1 || id >= vocab_size())
      throw ModelFileError(origin + ": BOS/EOS id " + std::to_string(id) + " out of range");
  int error = 0;
  PCRE2_SIZE offset = 0;
  regex_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(split.pattern.data()), split.pattern.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw ModelFileError(origin + ": the pre-tokenization regex '" + split.pattern +
                         "' does not compile with PCRE2 (" +
                         reinterpret_cast<const char*>(message) + " at offset " +
                         std::to_string(offset) + ")");
  }
}

BpeTokenizer BpeTokenizer::from_gguf(const GgufFile& g) {
  const std::string model = g.get_string("tokenizer.ggml.model");
  if (model != "gpt2")
    throw ModelFileError(g.path() + ": tokenizer.ggml.model is '" + model +
                         "'; sparq reads byte-level BPE ('gpt2') vocabularies");
  // The pre-tokenizer, by llama.cpp's name. Others split text differently; reading them with
  // another rule would give wrong ids without a word, so they are refused by name.
  const std::string pre =
      g.has("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : std::string("default");
  BpeSplit split;
  if (pre == "default" || pre == "gpt2" || pre == "smollm")
    split = BpeSplit::gpt2();
  else if (pre == "llama-bpe" || pre == "llama3")
    split = BpeSplit::llama3();
  else if (pre == "qwen2")
    split = BpeSplit::qwen2();
  else
    throw ModelFileError(g.path() + ": tokenizer.ggml.pre is '" + pre +
                         "'; sparq's byte-level BPE implements default, gpt2, smollm, llama-bpe, "
                         "llama3 and qwen2; give this model's prompt as token ids");
  auto tokens = g.get_strings("tokenizer.ggml.tokens");
  const auto merges = g.get_strings("tokenizer.ggml.merges");
  std::vector<int32_t> special;
  if (g.has("tokenizer.ggml.token_type")) {
    const auto types = g.get_ints("tokenizer.ggml.token_type");
    if (types.size() != tokens.size())
      throw ModelFileError(g.path() + ": tokenizer.ggml.token_type has " +
                           std::to_string(types.size()) + " entries for " +
                           std::to_string(tokens.size()) + " tokens");
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == 3 || types[i] == 4)  // control, user-defined: matched verbatim
        special.push_back(static_cast<int32_t>(i));
  }
  auto id = [&](const char* key) {
    return g.has(key) ? static_cast<int32_t>(g.get_uint(key)) : -1;
  };
  return BpeTokenizer(std::move(tokens), merges, special, id("tokenizer.ggml.bos_token_id"),
                      id("tokenizer.ggml.eos_token_id"), g.path(), split);
}

BpeTokenizer BpeTokenizer::from_gguf_file(const std::string& path) {
  return from_gguf(GgufFile::open(path));
}

void BpeTokenizer::encode_piece(const std::string& bytes, std::vector<int32_t>& out) const {
  const ByteAlphabet& a = alphabet();
  if (ignore_merges_) {
    std::string whole;
    for (unsigned char b : bytes) whole += a.of_byte[b];
    if (const auto it = ids_.find(whole); it != ids_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<std::string> parts;
  for (unsigned char b : bytes) parts.push_back(a.of_byte[b]);
  // Merge the lowest-ranked adjacent pair until none is left.
  while (parts.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks_.find(parts[i] + " " + parts[i + 1]);
      if (it != ranks_.end() && it->second < best) {
        best = it->second;
        at = i;
      }
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  for (const std::string& p : parts) {
    const auto it = ids_.find(p);
    if (it == ids_.end())
      throw InvalidArgument("bpe: the piece '" + p + "' is not in the vocabulary");
    out.push_back(it->second);
  }
}

std::vector<int32_t> BpeTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> owned(
      pcre2_match_data_create_from_pattern(regex_->code, nullptr), &pcre2_match_data_free);
  pcre2_match_data* match = owned.get();
  auto pretokenize = [&](size_t begin, size_t end) {
    size_t at = begin;
    while (at < end) {
      const int rc = pcre2_match(regex_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), end, at,
                                 0, match, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) {  // the rest is one piece (never for the built-in rules)
        encode_piece(text.substr(at, end - at), out);
        break;
      }
      if (rc < 0) {  // invalid UTF-8, or a file's regex past PCRE2's match limit
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof message);
        throw InvalidArgument("bpe: pre-tokenizing failed at byte " + std::to_string(at) + ": " +
                              reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* v = pcre2_get_ovector_pointer(match);
      if (v[1] <= v[0])  // an empty match (a regex from a file may allow one): refused, not looped
        throw InvalidArgument("bpe: the pre-tokenization regex matched nothing at byte " +
                              std::to_string(v[0]));
      // Text the regex skipped is a piece of its own (Split's Isolated behavior).
      if (v[0] > at) encode_piece(text.substr(at, v[0] - at), out);
      encode_piece(text.substr(v[0], v[1] - v[0]), out);
      at = v[1];
    }
  };
  split_at_specials(text, specials_, out,
                    [&](size_t begin, size_t end) { pretokenize(begin, end); });
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  const ByteAlphabet& a = alphabet();
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw InvalidArgument("bpe: token id " + std::to_string(id) + " is outside the vocabulary (" +
                            std::to_string(vocab_size()) + ")");
    const std::string& t = tokens_[static_cast<size_t>(id)];
    if (std::any_of(specials_.begin(), specials_.end(),
                    [&](const auto& s) { return s.second == id; })) {
      out += t;
      continue;
    }
    // Each character of the piece is one byte of the text.
    for (size_t i = 0; i < t.size();) {
      const auto c = static_cast<unsigned char>(t[i]);
      uint32_t cp = c;
      size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      len = std::min(len, t.size() - i);
      if (len == 2) cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(t[i + 1]) & 0x3Fu);
      const auto it = a.byte_of.find(cp);
      if (it == a.byte_of.end())
        out += t.substr(i, len);  // not in the byte alphabet: kept as it is
      else
        out += static_cast<char>(it->second);
      i += len;
    }
  }
  return out;
}

}  // namespace sparq::models
