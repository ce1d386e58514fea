// The byte-level BPE tokenizer read from a Hugging Face tokenizer.json (and tokenizer_config.json)
// against the same vocabulary given directly (the form GGUF files hand over, which
// test_smollm2 checks against transformers on a real model): the same ids for a set of texts,
// merges written either way, and clear errors for vocabularies sparq does not read.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sparq/error.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "src/gguf.hpp"

namespace sparq::models {
namespace {

// GPT-2's byte alphabet: the character that stands for each byte, as UTF-8.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> out;
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : 256 + shifted++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out.push_back(s);
  }
  return out;
}

struct Vocab {
  std::vector<std::string> tokens, merges;
  int32_t eos = 0;
};

Vocab tiny_vocab() {
  Vocab v;
  v.tokens = byte_symbols();
  const std::string space = v.tokens[' '];  // "Ġ"
  for (const auto& [l, r] : std::vector<std::pair<std::string, std::string>>{{"h", "e"},
                                                                             {"l", "l"},
                                                                             {"he", "ll"},
                                                                             {"hell", "o"},
                                                                             {space, "w"},
                                                                             {"o", "r"},
                                                                             {space + "w", "or"},
                                                                             {space + "wor", "ld"},
                                                                             {"l", "d"},
                                                                             {"1", "2"},
                                                                             {space, "1"}}) {
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(l + r);
  }
  v.eos = static_cast<int32_t>(v.tokens.size());
  v.tokens.push_back("<|endoftext|>");
  return v;
}

class TokenizerJson : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / "sparq_tokenizer_json";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  nlohmann::json tokenizer_json(const Vocab& v, bool merges_as_pairs) const {
    nlohmann::json vocab = nlohmann::json::object();
    for (size_t i = 0; i + 1 < v.tokens.size(); ++i) vocab[v.tokens[i]] = i;
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& m : v.merges) {
      const auto cut = m.find(' ');
      if (merges_as_pairs)
        merges.push_back({m.substr(0, cut), m.substr(cut + 1)});
      else
        merges.push_back(m);
    }
    return {{"version", "1.0"},
            {"added_tokens", {{{"id", v.eos}, {"content", "<|endoftext|>"}, {"special", true}}}},
            {"pre_tokenizer",
             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  }
  void write(const nlohmann::json& tokenizer,
             const nlohmann::json& config = {{"eos_token", "<|endoftext|>"}}) const {
    std::ofstream(dir_ / "tokenizer.json") << tokenizer.dump();
    std::ofstream(dir_ / "tokenizer_config.json") << config.dump();
  }
  void expect_error(const std::string& fragment) const {
    try {
      BpeTokenizer::from_folder(dir_.string());
      ADD_FAILURE() << "loaded; expected an error about " << fragment;
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  }
  std::filesystem::path dir_;
};

TEST_F(TokenizerJson, EncodesAsTheSameVocabularyGivenDirectly) {
  const Vocab v = tiny_vocab();
  const BpeTokenizer direct(v.tokens, v.merges, {v.eos}, -1, v.eos, "direct");
  for (const bool pairs : {false, true}) {
    write(tokenizer_json(v, pairs));
    const BpeTokenizer loaded = BpeTokenizer::from_folder(dir_.string());
    EXPECT_EQ(loaded.vocab_size(), static_cast<int64_t>(v.tokens.size()));
    EXPECT_EQ(loaded.eos(), v.eos);
    EXPECT_EQ(loaded.bos(), -1);
    const int32_t hello = 256 + 3, world = 256 + 7;
    EXPECT_EQ(loaded.encode("hello world"), (std::vector<int32_t>{hello, world}));
    for (const std::string text :
         {"hello world", "hello<|endoftext|>world", "héllo 12 112  wörld!!\n\n", "日本 🙂 ld",
          "   spaces   ", ""}) {
      EXPECT_EQ(loaded.encode(text), direct.encode(text)) << text;
      EXPECT_EQ(loaded.decode(loaded.encode(text)), text);
    }
  }
}

TEST_F(TokenizerJson, RejectsWhatItDoesNotRead) {
  const Vocab v = tiny_vocab();
  auto j = tokenizer_json(v, false);
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "▁"}};
  write(j);
  expect_error("SentencePiece");
  j = tokenizer_json(v, false);
  j["model"]["byte_fallback"] = true;
  write(j);
  expect_error("byte_fallback");
  j = tokenizer_json(v, false);
  j["model"]["type"] = "WordPiece";
  write(j);
  expect_error("model type 'WordPiece'");
  // Values of an unexpected JSON type get sparq's error, not the JSON library's (the first was
  // found by fuzz_tokenizers: "type": [...]).
  for (const char* key : {"type", "byte_fallback"}) {
    j = tokenizer_json(v, false);
    j["model"][key] = {"h e", "l l"};
    write(j);
    expect_error("unexpected type");
  }
  j = tokenizer_json(v, false);
  j["pre_tokenizer"]["add_prefix_space"] = "yes";
  write(j);
  expect_error("unexpected type");
  j = tokenizer_json(v, false);
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", {{{"type", "Split"}}, {{"type", "ByteLevel"}}}}};
  write(j);
  expect_error("pre_tokenizer");
  j = tokenizer_json(v, false);
  j["pre_tokenizer"]["use_regex"] = false;
  write(j);
  expect_error("use_regex");
  j = tokenizer_json(v, false);
  j["model"]["vocab"].erase("h");
  write(j);
  expect_error("no token has id 104");
  j = tokenizer_json(v, false);
  j["model"]["vocab"]["h"] = -3;
  write(j);
  expect_error("has id -3");
  j = tokenizer_json(v, false);
  j["model"]["vocab"]["zz"] = 5;
  write(j);
  expect_error("id 5 is both");
  j = tokenizer_json(v, false);
  j["model"]["merges"].push_back(7);
  write(j);
  expect_error("merge 11 is 7");
  j = tokenizer_json(v, false);
  j["model"]["merges"].push_back("nospace");
  write(j);
  expect_error("not two pieces");
  write(tokenizer_json(v, false), {{"eos_token", {{"content", "</s>"}}}});
  expect_error("'eos_token' is '</s>'");
  std::ofstream(dir_ / "tokenizer.json") << "{\"model\": ";
  expect_error("tokenizer.json");
  std::filesystem::remove(dir_ / "tokenizer.json");
  expect_error("tokenizer.json");
}

// From GGUF: the same vocabulary loads under GPT-2's pre-tokenizer names and is refused, naming
// the pre-tokenizer, under others (whose split rule sparq does not implement).
TEST(TokenizerGguf, KnownPreTokenizersOnly) {
  const Vocab v = tiny_vocab();
  const BpeTokenizer direct(v.tokens, v.merges, {v.eos}, -1, v.eos, "direct");
  const auto path = std::filesystem::temp_directory_path() / "sparq_tokenizer.gguf";
  std::vector<int32_t> types(v.tokens.size(), 1);
  types.back() = 3;  // control
  for (const std::string pre : {"", "default", "gpt2", "smollm", "llama-bpe", "qwen2"}) {
    std::vector<std::pair<std::string, GgufValue>> meta = {
        {"general.architecture", gguf_string("llama")},
        {"tokenizer.ggml.model", gguf_string("gpt2")},
        {"tokenizer.ggml.tokens", gguf_strings(v.tokens)},
        {"tokenizer.ggml.merges", gguf_strings(v.merges)},
        {"tokenizer.ggml.token_type", gguf_int32s(types)},
        {"tokenizer.ggml.eos_token_id", gguf_uint32(static_cast<uint32_t>(v.eos))}};
    if (!pre.empty()) meta.emplace_back("tokenizer.ggml.pre", gguf_string(pre));
    write_gguf(path.string(), meta, {});
    if (pre == "llama-bpe" || pre == "qwen2") {
      try {
        BpeTokenizer::from_gguf_file(path.string());
        ADD_FAILURE() << "loaded pre-tokenizer " << pre;
      } catch (const ModelFileError& e) {
        EXPECT_NE(std::string(e.what()).find("'" + pre + "'"), std::string::npos) << e.what();
      }
    } else {
      const auto t = BpeTokenizer::from_gguf_file(path.string());
      EXPECT_EQ(t.eos(), v.eos);
      EXPECT_EQ(t.encode("hello world<|endoftext|>"), direct.encode("hello world<|endoftext|>"))
          << pre;
    }
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sparq::models
