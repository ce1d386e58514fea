#include "sparq/models/tokenizer.hpp"

#include <filesystem>

#include "models/config_json.hpp"
#include "sparq/error.hpp"
#include "src/gguf.hpp"

namespace sparq::models {

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model == "llama") return Tokenizer(SpmTokenizer::from_gguf(file));
  if (model == "gpt2") return Tokenizer(BpeTokenizer::from_gguf(file));
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
  if (spm) return Tokenizer(SpmTokenizer::from_folder(dir));
  return Tokenizer(BpeTokenizer::from_folder(dir));
}

}  // namespace sparq::models
