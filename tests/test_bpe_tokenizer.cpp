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
#include "sparq/models/tokenizer.hpp"
#include "src/gguf.hpp"
#include "test_util.hpp"

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
    // One directory per test: CTest runs this file's tests as separate processes side by side.
    dir_ = std::filesystem::temp_directory_path() /
           (std::string("sparq_tokenizer_json_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
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

// The ids that end a generation from a folder: EOS, and generation_config.json's eos_token_id (one
// id or a list, as Llama 3 Instruct gives its end-of-turn token); refused outside the vocabulary.
TEST_F(TokenizerJson, EndOfGenerationFromGenerationConfig) {
  const Vocab v = tiny_vocab();
  write(tokenizer_json(v, false));
  EXPECT_EQ(Tokenizer::from_folder(dir_.string()).end_of_generation(),
            (std::vector<int32_t>{v.eos}));
  auto with_generation = [&](const std::string& json) {
    std::ofstream(dir_ / "generation_config.json") << json;
    return Tokenizer::from_folder(dir_.string());
  };
  EXPECT_EQ(with_generation(R"({"eos_token_id": [260, )" + std::to_string(v.eos) + ", 12]}")
                .end_of_generation(),
            (std::vector<int32_t>{v.eos, 260, 12}));
  const Tokenizer one = with_generation(R"({"bos_token_id": 1, "eos_token_id": 7})");
  EXPECT_TRUE(one.ends_generation(7));
  EXPECT_TRUE(one.ends_generation(v.eos));
  EXPECT_FALSE(one.ends_generation(8));
  EXPECT_THROW_WITH(with_generation(R"({"eos_token_id": [5, 99999]})"), ModelFileError,
                    "eos_token_id is 99999, outside the vocabulary");
  EXPECT_THROW_WITH(with_generation(R"({"eos_token_id": "</s>"})"), ModelFileError,
                    "a token id or a list expected");
  std::filesystem::remove(dir_ / "generation_config.json");
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

// Llama 3's and Qwen2's pre-tokenization against the Hugging Face tokenizers library: two small
// vocabularies trained with each family's tokenizer.json pre-tokenizer (a Split by its regex, then
// ByteLevel; Llama 3 with ignore_merges) and the ids tokenizers gave for hard strings
// (tests/fixtures/make_split_tokenizers.py). sparq reads each from the tokenizer.json (the regex
// from the file) and from a GGUF of the same vocabulary under llama.cpp's pre-tokenizer name (the
// regex built in).
TEST(TokenizerSplit, Llama3AndQwen2MatchHuggingFaceTokenizers) {
  const std::string dir = std::string(SPARQ_FIXTURE_DIR) + "/split_tokenizers";
  std::ifstream expected_file(dir + "/expected.json");
  const auto expected = nlohmann::json::parse(expected_file);
  const auto strings = expected["strings"].get<std::vector<std::string>>();
  const auto gguf_path = std::filesystem::temp_directory_path() / "sparq_split_tokenizer.gguf";
  for (const auto& [family, pre] :
       {std::pair<std::string, std::string>{"llama3", "llama-bpe"}, {"qwen2", "qwen2"}}) {
    SCOPED_TRACE(family);
    const auto from_json = BpeTokenizer::from_folder(dir + "/" + family);
    // The same vocabulary as GGUF metadata: tokens by id, merges by rank, added tokens as control.
    std::ifstream json_file(dir + "/" + family + "/tokenizer.json");
    const auto j = nlohmann::json::parse(json_file);
    std::vector<std::string> tokens(j["model"]["vocab"].size() + j["added_tokens"].size());
    std::vector<int32_t> types(tokens.size(), 1);
    for (const auto& [text, id] : j["model"]["vocab"].items()) tokens[id.get<size_t>()] = text;
    for (const auto& t : j["added_tokens"]) {
      tokens[t["id"].get<size_t>()] = t["content"].get<std::string>();
      types[t["id"].get<size_t>()] = 3;
    }
    std::vector<std::string> merges;
    for (const auto& m : j["model"]["merges"])
      merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m[0].get<std::string>() + " " + m[1].get<std::string>());
    write_gguf(gguf_path.string(),
               {{"general.architecture", gguf_string("llama")},
                {"tokenizer.ggml.model", gguf_string("gpt2")},
                {"tokenizer.ggml.pre", gguf_string(pre)},
                {"tokenizer.ggml.tokens", gguf_strings(tokens)},
                {"tokenizer.ggml.merges", gguf_strings(merges)},
                {"tokenizer.ggml.token_type", gguf_int32s(types)}},
               {});
    const auto from_gguf = BpeTokenizer::from_gguf_file(gguf_path.string());
    for (size_t i = 0; i < strings.size(); ++i) {
      SCOPED_TRACE(testing::Message() << "'" << strings[i] << "'");
      const auto want = expected[family][i].get<std::vector<int32_t>>();
      EXPECT_EQ(from_json.encode(strings[i]), want);
      EXPECT_EQ(from_gguf.encode(strings[i]), want);
      EXPECT_EQ(from_json.decode(want), strings[i]);
    }
  }
  std::filesystem::remove(gguf_path);
}

// The families' rules differ where they should: GPT-2 keeps a digit run together, Llama 3 up to 3
// digits, Qwen2 one; Llama 3 cuts "'S" off in any case, GPT-2 only "'s". Shown through
// ignore_merges: each piece that is a vocabulary token becomes one id.
TEST(TokenizerSplit, BuiltInRulesDifferWhereTheyShould) {
  std::vector<std::string> tokens = tiny_vocab().tokens;
  for (const char* piece : {"1234", "123", "IT", "'S"}) tokens.push_back(piece);
  auto ids = [&](BpeSplit split, const std::string& text) {
    split.ignore_merges = true;
    const BpeTokenizer t(tokens, {}, {}, -1, -1, "test", split);
    const auto out = t.encode(text);
    EXPECT_EQ(t.decode(out), text);
    return out.size();
  };
  EXPECT_EQ(ids(BpeSplit::gpt2(), "1234"), 1u);    // "1234"
  EXPECT_EQ(ids(BpeSplit::llama3(), "1234"), 2u);  // "123", "4"
  EXPECT_EQ(ids(BpeSplit::qwen2(), "1234"), 4u);   // "1", "2", "3", "4"
  EXPECT_EQ(ids(BpeSplit::llama3(), "IT'S"), 2u);  // "IT", "'S"
  EXPECT_EQ(ids(BpeSplit::gpt2(), "IT'S"), 3u);    // "IT", "'", "S"
}

// A file's regex may backtrack without end: PCRE2's match limit ends it with an error that says
// so; invalid UTF-8 likewise.
TEST(TokenizerSplit, MatchErrorsAreInvalidArgumentsThatSayWhy) {
  const Vocab v = tiny_vocab();
  const BpeTokenizer slow(v.tokens, v.merges, {}, -1, -1, "file.json", {"(a+)+$", false});
  EXPECT_THROW_WITH(slow.encode(std::string(40, 'a') + "!"), InvalidArgument, "limit");
  const BpeTokenizer gpt2(v.tokens, v.merges, {}, -1, -1, "file.json");
  EXPECT_THROW_WITH(gpt2.encode("bad \xff utf-8"), InvalidArgument, "UTF-8");
}

TEST(TokenizerSplit, ARegexThatDoesNotCompileIsAModelFileError) {
  const Vocab v = tiny_vocab();
  EXPECT_THROW_WITH(BpeTokenizer(v.tokens, v.merges, {}, -1, -1, "file.json", {"(unclosed", false}),
                    ModelFileError, "file.json");
}

// From GGUF: the same vocabulary loads under the pre-tokenizer names sparq implements and is
// refused, naming the pre-tokenizer, under others (whose split rule sparq does not implement).
TEST(TokenizerGguf, KnownPreTokenizersOnly) {
  const Vocab v = tiny_vocab();
  const BpeTokenizer direct(v.tokens, v.merges, {v.eos}, -1, v.eos, "direct");
  const auto path = std::filesystem::temp_directory_path() / "sparq_tokenizer.gguf";
  std::vector<int32_t> types(v.tokens.size(), 1);
  types.back() = 3;  // control
  for (const std::string pre : {"", "default", "gpt2", "smollm", "llama-bpe", "llama3", "qwen2",
                                "falcon", "deepseek-llm"}) {
    std::vector<std::pair<std::string, GgufValue>> meta = {
        {"general.architecture", gguf_string("llama")},
        {"tokenizer.ggml.model", gguf_string("gpt2")},
        {"tokenizer.ggml.tokens", gguf_strings(v.tokens)},
        {"tokenizer.ggml.merges", gguf_strings(v.merges)},
        {"tokenizer.ggml.token_type", gguf_int32s(types)},
        {"tokenizer.ggml.eos_token_id", gguf_uint32(static_cast<uint32_t>(v.eos))}};
    if (!pre.empty()) meta.emplace_back("tokenizer.ggml.pre", gguf_string(pre));
    write_gguf(path.string(), meta, {});
    if (pre == "falcon" || pre == "deepseek-llm") {
      try {
        BpeTokenizer::from_gguf_file(path.string());
        ADD_FAILURE() << "loaded pre-tokenizer " << pre;
      } catch (const ModelFileError& e) {
        EXPECT_NE(std::string(e.what()).find("'" + pre + "'"), std::string::npos) << e.what();
      }
    } else {
      const auto t = BpeTokenizer::from_gguf_file(path.string());
      EXPECT_EQ(t.eos(), v.eos);
      EXPECT_EQ(Tokenizer::from_gguf_file(path.string()).end_of_generation(),
                (std::vector<int32_t>{v.eos}));
      // The rules agree on this text: the same ids under every implemented name.
      EXPECT_EQ(t.encode("hello world<|endoftext|>"), direct.encode("hello world<|endoftext|>"))
          << pre;
    }
  }
  std::filesystem::remove(path);
}

// From GGUF: EOS, then the end-of-turn and end-of-message ids where the file names them (llama.cpp
// writes them for Llama 3 Instruct and others); an id outside the vocabulary is refused by key.
TEST(TokenizerGguf, EndOfGenerationIncludesEndOfTurn) {
  const Vocab v = tiny_vocab();
  const auto path = std::filesystem::temp_directory_path() / "sparq_tokenizer_eog.gguf";
  auto write_with = [&](uint32_t eot, uint32_t eom) {
    write_gguf(path.string(),
               {{"general.architecture", gguf_string("llama")},
                {"tokenizer.ggml.model", gguf_string("gpt2")},
                {"tokenizer.ggml.tokens", gguf_strings(v.tokens)},
                {"tokenizer.ggml.merges", gguf_strings(v.merges)},
                {"tokenizer.ggml.eos_token_id", gguf_uint32(static_cast<uint32_t>(v.eos))},
                {"tokenizer.ggml.eot_token_id", gguf_uint32(eot)},
                {"tokenizer.ggml.eom_token_id", gguf_uint32(eom)}},
               {});
  };
  write_with(17, 18);
  const Tokenizer t = Tokenizer::from_gguf_file(path.string());
  EXPECT_EQ(t.end_of_generation(), (std::vector<int32_t>{v.eos, 17, 18}));
  EXPECT_TRUE(t.ends_generation(17));
  EXPECT_FALSE(t.ends_generation(19));
  write_with(17, 1u << 30);
  EXPECT_THROW_WITH(Tokenizer::from_gguf_file(path.string()), ModelFileError,
                    "tokenizer.ggml.eom_token_id is 1073741824, outside");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace sparq::models
