// BpeTokenizer::from_folder: a Hugging Face tokenizer.json of the byte-level BPE kind.
#include <filesystem>
#include <string>
#include <vector>

#include "models/config_json.hpp"
#include "sparq/error.hpp"
#include "sparq/models/bpe_tokenizer.hpp"

namespace sparq::models {
namespace {

using config_json::fail;

// The split the pre_tokenizer describes: ByteLevel with its own regex (GPT-2's), or a Split by a
// regex (behavior Isolated, not inverted) followed by ByteLevel without one (Llama 3, Qwen2).
BpeSplit read_split(const nlohmann::json& j, const std::string& origin) {
  if (!j.contains("pre_tokenizer") || j["pre_tokenizer"].is_null())
    fail(origin, "no pre_tokenizer; sparq reads byte-level BPE (the ByteLevel pre-tokenizer)");
  const nlohmann::json& p = j["pre_tokenizer"];
  std::vector<const nlohmann::json*> steps;
  if (p.is_object() && p.value("type", "") == "Sequence" && p.contains("pretokenizers") &&
      p["pretokenizers"].is_array()) {
    for (const auto& step : p["pretokenizers"]) steps.push_back(&step);
  } else {
    steps.push_back(&p);
  }
  auto type_of = [](const nlohmann::json* s) {
    return s->is_object() ? s->value("type", "") : std::string();
  };
  const nlohmann::json* byte_level = steps.back();
  const std::string last = type_of(byte_level);
  if (last == "Metaspace")
    fail(origin,
         "pre_tokenizer Metaspace (a SentencePiece-style vocabulary); sparq reads "
         "byte-level BPE vocabularies (GPT-2, SmolLM2, Llama 3, Qwen2)");
  const bool split_first = steps.size() == 2 && type_of(steps[0]) == "Split";
  if (last != "ByteLevel" || (steps.size() == 2 && !split_first) || steps.size() > 2)
    fail(origin, "pre_tokenizer " + p.dump().substr(0, 200) +
                     "; sparq reads ByteLevel, or a Split by regex followed by ByteLevel");
  if (byte_level->value("add_prefix_space", false))
    fail(origin, "pre_tokenizer ByteLevel with add_prefix_space: not supported");
  const bool own_regex = !byte_level->contains("use_regex") || (*byte_level)["use_regex"] == true;
  if (!split_first) {
    if (!own_regex)
      fail(origin,
           "pre_tokenizer ByteLevel without its regex (use_regex false) and no Split before it: "
           "the vocabulary splits text by a rule the file does not give");
    return BpeSplit::gpt2();
  }
  if (own_regex)
    fail(origin, "pre_tokenizer Split followed by ByteLevel with its own regex: not supported");
  const nlohmann::json& split = *steps[0];
  if (split.value("behavior", "") != "Isolated" || split.value("invert", false))
    fail(origin, "pre_tokenizer Split with behavior '" + split.value("behavior", "") + "'" +
                     (split.value("invert", false) ? " inverted" : "") +
                     "; sparq implements Isolated, not inverted");
  if (!split.contains("pattern") || !split["pattern"].is_object() ||
      !split["pattern"].contains("Regex") || !split["pattern"]["Regex"].is_string())
    fail(origin, "pre_tokenizer Split without a {\"Regex\": ...} pattern: " +
                     (split.contains("pattern") ? split["pattern"].dump() : std::string("none")));
  BpeSplit s;
  s.pattern = split["pattern"]["Regex"].get<std::string>();
  return s;
}

// A special token's text from tokenizer_config.json: a string or {"content": string}.
std::string token_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

}  // namespace

BpeTokenizer BpeTokenizer::from_folder(const std::string& dir) {
  const std::string origin = (std::filesystem::path(dir) / "tokenizer.json").string();
  return config_json::guarded(origin, [&] { return read_folder(dir, origin); });
}

BpeTokenizer BpeTokenizer::read_folder(const std::string& dir, const std::string& origin) {
  namespace fs = std::filesystem;
  const nlohmann::json j = config_json::parse_object(config_json::read_file(origin), origin);
  if (!j.contains("model") || !j["model"].is_object()) fail(origin, "no 'model' object");
  const nlohmann::json& m = j["model"];
  const std::string type = m.value("type", "BPE");
  if (type != "BPE") fail(origin, "model type '" + type + "'; sparq reads BPE vocabularies");
  if (m.value("byte_fallback", false))
    fail(origin,
         "a BPE model with byte_fallback (a SentencePiece-style vocabulary); sparq reads "
         "byte-level BPE vocabularies (GPT-2, SmolLM2)");
  BpeSplit split = read_split(j, origin);
  split.ignore_merges = m.value("ignore_merges", false);
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail(origin, "model.vocab is not an object");
  if (!m.contains("merges") || !m["merges"].is_array()) fail(origin, "model.merges is not a list");

  // Ids must cover 0..N-1 exactly once, between the vocabulary and the added tokens.
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  auto place = [&](const std::string& text, const nlohmann::json& id_value, const char* where) {
    if (!id_value.is_number_integer() || id_value.get<int64_t>() < 0 ||
        id_value.get<int64_t>() >= (int64_t{1} << 24))
      fail(origin, std::string(where) + " '" + text + "' has id " + id_value.dump() +
                       " (0..16777215 expected)");
    const auto id = static_cast<size_t>(id_value.get<int64_t>());
    if (id >= tokens.size()) {
      tokens.resize(id + 1);
      seen.resize(id + 1, false);
    }
    if (seen[id] && tokens[id] != text)
      fail(origin, "id " + std::to_string(id) + " is both '" + tokens[id] + "' and '" + text + "'");
    tokens[id] = text;
    seen[id] = true;
  };
  for (const auto& [text, id] : m["vocab"].items()) place(text, id, "vocabulary token");
  std::vector<int32_t> special;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) fail(origin, "'added_tokens' is not a list");
    for (const auto& t : j["added_tokens"]) {
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
          !t.contains("id"))
        fail(origin, "an added token without content and id: " + t.dump());
      place(t["content"].get<std::string>(), t["id"], "added token");
      // Added tokens, special or not, are cut out of the text before the BPE (as the Hugging
      // Face tokenizers library does).
      special.push_back(t["id"].get<int32_t>());
    }
  }
  for (size_t id = 0; id < seen.size(); ++id)
    if (!seen[id]) fail(origin, "no token has id " + std::to_string(id));

  std::vector<std::string> merges;
  merges.reserve(m["merges"].size());
  for (const auto& merge : m["merges"]) {
    if (merge.is_string()) {
      merges.push_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
    } else {
      fail(origin, "merge " + std::to_string(merges.size()) + " is " + merge.dump() +
                       " (\"left right\" or [left, right] expected)");
    }
  }

  // BOS / EOS: tokenizer_config.json names them when it is there.
  int32_t bos = -1, eos = -1;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    const nlohmann::json c = config_json::parse_object(config_json::read_file(config_path.string()),
                                                       config_path.string());
    auto find = [&](const char* key) {
      const std::string text = c.contains(key) ? token_text(c[key]) : "";
      if (text.empty()) return int32_t{-1};
      for (size_t id = 0; id < tokens.size(); ++id)
        if (tokens[id] == text) return static_cast<int32_t>(id);
      fail(config_path.string(),
           std::string("'") + key + "' is '" + text + "', which is not in the vocabulary");
    };
    bos = find("bos_token");
    eos = find("eos_token");
  }
  return BpeTokenizer(std::move(tokens), merges, special, bos, eos, origin, split);
}

}  // namespace sparq::models
