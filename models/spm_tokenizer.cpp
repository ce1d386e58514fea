#include "sparq/models/spm_tokenizer.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "models/config_json.hpp"
#include "models/special_tokens.hpp"
#include "sparq/error.hpp"
#include "src/gguf.hpp"

namespace sparq::models {
namespace {

constexpr const char* kSpace = "\xE2\x96\x81";  // "▁", U+2581

// Bytes of the UTF-8 character starting at s[i] (1 for a byte that does not start one).
size_t char_length(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - i);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

void SpmTokenizer::finish(const std::string& origin) {
  if (tokens_.empty() || tokens_.size() > (size_t{1} << 24))
    throw ModelFileError(origin + ": an empty or oversized vocabulary");
  for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], static_cast<int32_t>(i));
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = ids_.find(name);
    byte_ids_[b] = it == ids_.end() ? -1 : it->second;
  }
  for (int32_t id : {bos_, eos_, unk_})
    if (id < -1 || id >= vocab_size())
      throw ModelFileError(origin + ": BOS/EOS/UNK id " + std::to_string(id) + " out of range");
  specials_ = special_tokens(tokens_, special_, origin);
}

SpmTokenizer SpmTokenizer::from_gguf(const GgufFile& g) {
  const std::string model = g.get_string("tokenizer.ggml.model");
  if (model != "llama")
    throw ModelFileError(g.path() + ": tokenizer.ggml.model is '" + model +
                         "'; the SentencePiece-style reader takes 'llama' vocabularies");
  SpmTokenizer t;
  t.tokens_ = g.get_strings("tokenizer.ggml.tokens");
  const auto scores = g.get_floats("tokenizer.ggml.scores");
  if (scores.size() != t.tokens_.size())
    throw ModelFileError(g.path() + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                         " entries for " + std::to_string(t.tokens_.size()) + " tokens");
  t.scores_.assign(scores.begin(), scores.end());
  t.use_scores_ = true;
  if (g.has("tokenizer.ggml.token_type")) {
    const auto types = g.get_ints("tokenizer.ggml.token_type");
    if (types.size() != t.tokens_.size())
      throw ModelFileError(g.path() + ": tokenizer.ggml.token_type has " +
                           std::to_string(types.size()) + " entries for " +
                           std::to_string(t.tokens_.size()) + " tokens");
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == 3 || types[i] == 4)  // control, user-defined: matched verbatim
        t.special_.push_back(static_cast<int32_t>(i));
  }
  auto id = [&](const char* key) {
    return g.has(key) ? static_cast<int32_t>(g.get_uint(key)) : -1;
  };
  t.bos_ = id("tokenizer.ggml.bos_token_id");
  t.eos_ = id("tokenizer.ggml.eos_token_id");
  t.unk_ = id("tokenizer.ggml.unknown_token_id");
  if (g.has("tokenizer.ggml.add_space_prefix"))
    t.add_space_prefix_ = g.value("tokenizer.ggml.add_space_prefix").b;
  t.finish(g.path());
  return t;
}

SpmTokenizer SpmTokenizer::from_gguf_file(const std::string& path) {
  return from_gguf(GgufFile::open(path));
}

SpmTokenizer SpmTokenizer::from_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  using config_json::fail;
  const std::string origin = (fs::path(dir) / "tokenizer.json").string();
  return config_json::guarded(origin, [&] {
    const nlohmann::json j = config_json::parse_object(config_json::read_file(origin), origin);
    if (!j.contains("model") || !j["model"].is_object()) fail(origin, "no 'model' object");
    const nlohmann::json& m = j["model"];
    if (m.value("type", "BPE") != "BPE" || !m.value("byte_fallback", false))
      fail(origin, "the SentencePiece-style reader takes a BPE model with byte_fallback");
    // "▁" before each segment and for every space: Prepend("▁") and Replace(" ", "▁")
    // normalizers, or a Metaspace pre-tokenizer.
    bool prepend = false, replace = false;
    if (j.contains("normalizer") && j["normalizer"].is_object() &&
        j["normalizer"].contains("normalizers") && j["normalizer"]["normalizers"].is_array())
      for (const auto& n : j["normalizer"]["normalizers"]) {
        if (!n.is_object()) continue;
        const std::string type = n.value("type", "");
        if (type == "Prepend" && n.value("prepend", "") == kSpace) prepend = true;
        if (type == "Replace" && n.value("content", "") == kSpace && n.contains("pattern") &&
            n["pattern"].is_object() && n["pattern"].value("String", "") == " ")
          replace = true;
      }
    const bool normalizer_ok = prepend && replace;
    const bool metaspace = j.contains("pre_tokenizer") && j["pre_tokenizer"].is_object() &&
                           j["pre_tokenizer"].value("type", "") == "Metaspace";
    if (!normalizer_ok && !metaspace)
      fail(origin,
           "neither a Prepend(\"▁\") + Replace(\" \", \"▁\") normalizer nor a Metaspace "
           "pre-tokenizer: not a SentencePiece-style vocabulary sparq reads");
    if (!m.contains("vocab") || !m["vocab"].is_object())
      fail(origin, "model.vocab is not an object");
    if (!m.contains("merges") || !m["merges"].is_array())
      fail(origin, "model.merges is not a list");
    SpmTokenizer t;
    for (const auto& [text, id] : m["vocab"].items()) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 24))
        fail(origin, "vocabulary token '" + text + "' has id " + id.dump());
      const auto i = static_cast<size_t>(id.get<int64_t>());
      if (i >= t.tokens_.size()) t.tokens_.resize(i + 1);
      t.tokens_[i] = text;
    }
    for (size_t i = 0; i < t.tokens_.size(); ++i)
      if (t.tokens_[i].empty()) fail(origin, "no token has id " + std::to_string(i));
    int32_t rank = 0;
    for (const auto& merge : m["merges"]) {
      std::string pair;
      if (merge.is_string())
        pair = merge.get<std::string>();
      else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string())
        pair = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
      else
        fail(origin, "merge " + std::to_string(rank) + " is " + merge.dump());
      t.ranks_.emplace(pair, rank++);
    }
    if (j.contains("added_tokens") && j["added_tokens"].is_array())
      for (const auto& a : j["added_tokens"]) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer())
          fail(origin, "an added token without an id: " + a.dump());
        t.special_.push_back(a["id"].get<int32_t>());
      }
    if (m.contains("unk_token") && m["unk_token"].is_string()) {
      const auto it =
          std::find(t.tokens_.begin(), t.tokens_.end(), m["unk_token"].get<std::string>());
      if (it != t.tokens_.end()) t.unk_ = static_cast<int32_t>(it - t.tokens_.begin());
    }
    const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
    if (fs::exists(config_path)) {
      const auto c = config_json::parse_object(config_json::read_file(config_path.string()),
                                               config_path.string());
      auto find = [&](const char* key) {
        if (!c.contains(key)) return int32_t{-1};
        const auto& v = c[key];
        const std::string text =
            v.is_string() ? v.get<std::string>()
            : v.is_object() && v.contains("content") && v["content"].is_string()
                ? v["content"].get<std::string>()
                : std::string();
        const auto it = std::find(t.tokens_.begin(), t.tokens_.end(), text);
        if (text.empty()) return int32_t{-1};
        if (it == t.tokens_.end())
          fail(config_path.string(),
               std::string("'") + key + "' is '" + text + "', which is not in the vocabulary");
        return static_cast<int32_t>(it - t.tokens_.begin());
      };
      t.bos_ = find("bos_token");
      t.eos_ = find("eos_token");
    }
    t.finish(origin);
    return t;
  });
}

std::optional<double> SpmTokenizer::merge_cost(const std::string& a, const std::string& b) const {
  if (use_scores_) {
    const auto it = ids_.find(a + b);
    if (it == ids_.end()) return std::nullopt;
    return -static_cast<double>(scores_[static_cast<size_t>(it->second)]);
  }
  const auto it = ranks_.find(a + " " + b);
  if (it == ranks_.end()) return std::nullopt;
  return static_cast<double>(it->second);
}

void SpmTokenizer::encode_segment(const std::string& text, std::vector<int32_t>& out) const {
  const std::string s = replace_all((add_space_prefix_ ? " " : "") + text, " ", kSpace);
  std::vector<std::string> parts;
  for (size_t i = 0; i < s.size();) {
    const size_t n = char_length(s, i);
    parts.push_back(s.substr(i, n));
    i += n;
  }
  // Merge the best adjacent pair (ties to the left) until none merges.
  while (parts.size() > 1) {
    std::optional<double> best;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto cost = merge_cost(parts[i], parts[i + 1]);
      if (cost && (!best || *cost < *best)) {
        best = cost;
        at = i;
      }
    }
    if (!best) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  for (const std::string& p : parts) {
    if (const auto it = ids_.find(p); it != ids_.end()) {
      out.push_back(it->second);
      continue;
    }
    for (unsigned char b : p) {  // byte fallback
      const int32_t id = byte_ids_[b] >= 0 ? byte_ids_[b] : unk_;
      if (id < 0)
        throw InvalidArgument("spm: '" + p +
                              "' is not in the vocabulary, which has no byte or unknown tokens");
      out.push_back(id);
    }
  }
}

std::vector<int32_t> SpmTokenizer::encode(const std::string& text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos_ >= 0) out.push_back(bos_);
  split_at_specials(text, specials_, out, [&](size_t begin, size_t end) {
    if (end > begin) encode_segment(text.substr(begin, end - begin), out);
  });
  return out;
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw InvalidArgument("spm: token id " + std::to_string(id) + " is outside the vocabulary (" +
                            std::to_string(vocab_size()) + ")");
    const std::string& t = tokens_[static_cast<size_t>(id)];
    const auto byte = std::find(std::begin(byte_ids_), std::end(byte_ids_), id);
    if (byte != std::end(byte_ids_))
      out += static_cast<char>(byte - std::begin(byte_ids_));
    else if (std::find(special_.begin(), special_.end(), id) != special_.end())
      out += t;
    else
      out += replace_all(t, kSpace, " ");
  }
  if (add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

}  // namespace sparq::models
