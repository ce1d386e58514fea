#include "sparq/models/tokenizer.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>

#include "models/config_json.hpp"
#include "sparq/error.hpp"
#include "src/gguf.hpp"

namespace sparq::models {

int64_t Tokenizer::vocab_size() const {
  return std::visit([](const auto& t) { return t.vocab_size(); }, kind_);
}

bool Tokenizer::ends_generation(int32_t id) const {
  return std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end();
}

void Tokenizer::add_end(int64_t id, const std::string& origin) {
  if (id == -1) return;
  if (id < 0 || id >= vocab_size())
    throw ModelFileError(origin + " is " + std::to_string(id) + ", outside the vocabulary of " +
                         std::to_string(vocab_size()) + " tokens");
  if (!ends_generation(static_cast<int32_t>(id))) end_ids_.push_back(static_cast<int32_t>(id));
}

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model");
  auto with_ends = [&](Tokenizer t) {
    t.add_end(t.eos(), file.path() + ": tokenizer.ggml.eos_token_id");
    for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"})
      if (file.has(key))
        t.add_end(static_cast<int64_t>(std::min<uint64_t>(file.get_uint(key), INT64_MAX)),
                  file.path() + ": " + key);
    return t;
  };
  if (model == "llama") return with_ends(Tokenizer(SpmTokenizer::from_gguf(file)));
  if (model == "gpt2") return with_ends(Tokenizer(BpeTokenizer::from_gguf(file)));
  throw ModelFileError(file.path() + ": tokenizer.ggml.model is '" + model +
                       "'; sparq reads byte-level BPE ('gpt2') and SentencePiece-style ('llama') "
                       "vocabularies");
}

Tokenizer Tokenizer::from_gguf_file(const std::string& path) {
  return from_gguf(GgufFile::open(path));
}

Tokenizer Tokenizer::from_folder(const std::string& dir) {
  const std::string origin = (std::filesystem::path(dir) / "tokenizer.json").string();
  const bool spm = config_json::guarded(origin, [&] {
    const nlohmann::json j = config_json::parse_object(config_json::read_file(origin), origin);
    return j.contains("model") && j["model"].is_object() &&
           j["model"].value("byte_fallback", false);
  });
  Tokenizer t =
      spm ? Tokenizer(SpmTokenizer::from_folder(dir)) : Tokenizer(BpeTokenizer::from_folder(dir));
  t.add_end(t.eos(), origin + " (eos_token)");
  const std::string generation = (std::filesystem::path(dir) / "generation_config.json").string();
  if (std::filesystem::exists(generation))
    config_json::guarded(generation, [&] {
      const nlohmann::json g =
          config_json::parse_object(config_json::read_file(generation), generation);
      if (!g.contains("eos_token_id") || g["eos_token_id"].is_null()) return 0;
      const nlohmann::json& ids = g["eos_token_id"];
      const std::string where = generation + ": eos_token_id";
      if (ids.is_number_integer()) {
        t.add_end(ids.get<int64_t>(), where);
      } else if (ids.is_array()) {
        for (const auto& id : ids) {
          if (!id.is_number_integer())
            throw ModelFileError(where + " holds " + id.dump() + " (token ids expected)");
          t.add_end(id.get<int64_t>(), where);
        }
      } else {
        throw ModelFileError(where + " is " + ids.dump() + " (a token id or a list expected)");
      }
      return 0;
    });
  return t;
}

}  // namespace sparq::models
