// config.json of BERT and DistilBERT, and loading an encoder's weights from a Hugging Face
// folder (BERT and DistilBERT names, with and without the "bert." prefix, F32/F16/BF16 tensors):
// values arrive, and missing tensors or shapes that disagree with the config are named.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "models/bert_save.hpp"
#include "models/prune_folder.hpp"
#include "sparq/error.hpp"
#include "sparq/models/bert_config.hpp"
#include "sparq/models/bert_weights.hpp"
#include "sparse/stats.hpp"
#include "src/safetensors.hpp"
#include "test_util.hpp"

namespace sparq::models {
namespace {

namespace fs = std::filesystem;

const char* kBertConfig = R"({"architectures":["BertModel"],"model_type":"bert","vocab_size":30,
  "hidden_size":8,"num_hidden_layers":2,"num_attention_heads":2,"intermediate_size":16,
  "hidden_act":"gelu","max_position_embeddings":16,"type_vocab_size":2,"layer_norm_eps":1e-12})";

const char* kDistilConfig = R"({"model_type":"distilbert","vocab_size":30,"dim":8,"n_layers":1,
  "n_heads":2,"hidden_dim":16,"activation":"gelu","max_position_embeddings":16})";

void expect_config_error(const std::string& json, const std::string& fragment) {
  try {
    BertConfig::from_json_text(json, "config.json");
    ADD_FAILURE() << "accepted: " << json;
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(BertConfig, ReadsBertAndDistilbert) {
  const auto b = BertConfig::from_json_text(kBertConfig, "config.json");
  EXPECT_EQ(b.arch, BertConfig::Arch::bert);
  EXPECT_EQ(b.hidden_size, 8);
  EXPECT_EQ(b.num_layers, 2);
  EXPECT_EQ(b.head_dim(), 4);
  EXPECT_EQ(b.type_vocab_size, 2);
  EXPECT_EQ(b.hidden_act, Activation::gelu_erf);
  const auto d = BertConfig::from_json_text(kDistilConfig, "config.json");
  EXPECT_EQ(d.arch, BertConfig::Arch::distilbert);
  EXPECT_EQ(d.intermediate_size, 16);
  EXPECT_EQ(d.type_vocab_size, 0);
}

TEST(BertConfig, RejectsBadConfigs) {
  expect_config_error("{", "not valid JSON");
  expect_config_error(R"({"model_type":"llama"})", "llama");
  expect_config_error(R"({"model_type":"bert","vocab_size":30})", "hidden_size");
  std::string c = kBertConfig;
  expect_config_error(c.replace(c.find("\"hidden_size\":8"), 15, "\"hidden_size\":-8"),
                      "hidden_size");
  c = kBertConfig;
  expect_config_error(
      c.replace(c.find("\"num_attention_heads\":2"), 23, "\"num_attention_heads\":3"),
      "multiple of 3");
  c = kBertConfig;
  expect_config_error(c.replace(c.find("\"gelu\""), 6, "\"mish\""), "mish");
}

class BertFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sparq_bert_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every tensor of a config's encoder, random, under the given names' prefix.
  void write_bert(const BertConfig& c, const std::string& prefix, TensorDType dtype,
                  const std::string& skip = "", const std::string& bad_shape = "") {
    std::map<std::string, std::vector<int64_t>> shapes;
    const int64_t h = c.hidden_size, i = c.intermediate_size;
    shapes["embeddings.word_embeddings.weight"] = {c.vocab_size, h};
    shapes["embeddings.position_embeddings.weight"] = {c.max_position, h};
    shapes["embeddings.LayerNorm.weight"] = {h};
    shapes["embeddings.LayerNorm.bias"] = {h};
    if (c.arch == BertConfig::Arch::bert) {
      shapes["embeddings.token_type_embeddings.weight"] = {c.type_vocab_size, h};
      shapes["pooler.dense.weight"] = {h, h};
      shapes["pooler.dense.bias"] = {h};
    }
    for (int64_t n = 0; n < c.num_layers; ++n) {
      auto linear = [&](const std::string& name, int64_t out, int64_t in) {
        shapes[name + ".weight"] = {out, in};
        shapes[name + ".bias"] = {out};
      };
      auto norm = [&](const std::string& name) {
        shapes[name + ".weight"] = {h};
        shapes[name + ".bias"] = {h};
      };
      if (c.arch == BertConfig::Arch::bert) {
        const std::string p = "encoder.layer." + std::to_string(n) + ".";
        for (const char* q : {"query", "key", "value"}) linear(p + "attention.self." + q, h, h);
        linear(p + "attention.output.dense", h, h);
        norm(p + "attention.output.LayerNorm");
        linear(p + "intermediate.dense", i, h);
        linear(p + "output.dense", h, i);
        norm(p + "output.LayerNorm");
      } else {
        const std::string p = "transformer.layer." + std::to_string(n) + ".";
        for (const char* q : {"q_lin", "k_lin", "v_lin", "out_lin"})
          linear(p + "attention." + q, h, h);
        norm(p + "sa_layer_norm");
        linear(p + "ffn.lin1", i, h);
        linear(p + "ffn.lin2", h, i);
        norm(p + "output_layer_norm");
      }
    }
    values_.clear();
    std::vector<TensorToWrite> list;
    uint32_t seed = 1;
    for (auto& [name, shape] : shapes) {
      if (name == skip) continue;
      if (name == bad_shape) shape.back() += 1;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      values_[name] = test::random_floats(static_cast<size_t>(n), seed++);
      list.push_back({prefix + name, dtype, shape, values_[name].data()});
    }
    // Real BERT checkpoints carry an I64 buffer the executor does not need.
    position_ids_.resize(static_cast<size_t>(c.max_position));
    for (size_t p = 0; p < position_ids_.size(); ++p) position_ids_[p] = static_cast<int64_t>(p);
    list.push_back({prefix + "embeddings.position_ids",
                    TensorDType::i64,
                    {1, c.max_position},
                    nullptr,
                    position_ids_.data()});
    write_safetensors((dir_ / "model.safetensors").string(), list);
  }

  fs::path dir_;
  std::map<std::string, std::vector<float>> values_;
  std::vector<int64_t> position_ids_;
};

TEST_F(BertFolderTest, LoadsBertWithAndWithoutPrefixInEveryDtype) {
  const auto c = BertConfig::from_json_text(kBertConfig, "config.json");
  for (const std::string prefix : {"", "bert."})
    for (TensorDType dtype : {TensorDType::f32, TensorDType::bf16, TensorDType::f16}) {
      SCOPED_TRACE(prefix + to_string(dtype));
      write_bert(c, prefix, dtype);
      const auto w = load_bert_weights(SafetensorsModel::open(dir_.string()), c);
      ASSERT_EQ(w.layers.size(), 2u);
      EXPECT_TRUE(w.has_pooler);
      const auto& want = values_["encoder.layer.1.intermediate.dense.weight"];
      const auto& got = w.layers[1].intermediate.weight;
      ASSERT_EQ(got.size(), want.size());
      const double tol = dtype == TensorDType::f32 ? 0.0 : 1e-2;  // bf16/f16 rounding
      for (size_t k = 0; k < got.size(); ++k) ASSERT_NEAR(got[k], want[k], tol) << k;
      EXPECT_EQ(w.layers[1].intermediate.out, 16);
      EXPECT_EQ(w.token_type_embeddings.size(), 2u * 8u);
    }
}

TEST_F(BertFolderTest, LoadsDistilbert) {
  const auto c = BertConfig::from_json_text(kDistilConfig, "config.json");
  write_bert(c, "distilbert.", TensorDType::f32);
  const auto w = load_bert_weights(SafetensorsModel::open(dir_.string()), c);
  EXPECT_EQ(w.layers.size(), 1u);
  EXPECT_FALSE(w.has_pooler);
  EXPECT_TRUE(w.token_type_embeddings.empty());
  EXPECT_EQ(w.layers[0].value.weight, values_["transformer.layer.0.attention.v_lin.weight"]);
}

// What save_bert_folder writes loads back as the same config and weights, for both namings.
TEST_F(BertFolderTest, SavedFoldersLoadBackExactly) {
  for (const char* text : {kBertConfig, kDistilConfig}) {
    const auto c = BertConfig::from_json_text(text, "config.json");
    write_bert(c, "", TensorDType::f32);
    const auto w = load_bert_weights(SafetensorsModel::open(dir_.string()), c);
    const fs::path out = dir_ / "saved";
    save_bert_folder(out.string(), c, w);
    const auto c2 = BertConfig::from_file((out / "config.json").string());
    EXPECT_EQ(bert_config_json(c2), bert_config_json(c));
    EXPECT_EQ(c2.arch, c.arch);
    EXPECT_EQ(c2.intermediate_size, c.intermediate_size);
    const auto w2 = load_bert_weights(SafetensorsModel::open(out.string()), c2);
    EXPECT_EQ(w2.word_embeddings, w.word_embeddings);
    EXPECT_EQ(w2.has_pooler, w.has_pooler);
    EXPECT_EQ(w2.pooler.weight, w.pooler.weight);
    EXPECT_EQ(w2.layers.back().output.weight, w.layers.back().output.weight);
    EXPECT_EQ(w2.layers.back().output_norm.beta, w.layers.back().output_norm.beta);
    BertWeights broken = w;
    broken.layers.back().key.bias.pop_back();
    EXPECT_THROW(save_bert_folder(out.string(), c, broken), InvalidArgument);
  }
}

TEST_F(BertFolderTest, NamesMissingAndMisshapenTensors) {
  const auto c = BertConfig::from_json_text(kBertConfig, "config.json");
  write_bert(c, "", TensorDType::f32, "encoder.layer.1.output.dense.bias");
  try {
    load_bert_weights(SafetensorsModel::open(dir_.string()), c);
    ADD_FAILURE();
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'encoder.layer.1.output.dense.bias'"),
              std::string::npos)
        << e.what();
  }
  write_bert(c, "", TensorDType::f32, "", "encoder.layer.0.attention.self.key.weight");
  try {
    load_bert_weights(SafetensorsModel::open(dir_.string()), c);
    ADD_FAILURE();
  } catch (const ModelFileError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("encoder.layer.0.attention.self.key.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[8,9]"), std::string::npos) << m;
    EXPECT_NE(m.find("[8,8]"), std::string::npos) << m;
  }
}

TEST_F(BertFolderTest, PruneFolderPrunesEncoderLinearsOnly) {
  const auto c = BertConfig::from_json_text(kBertConfig, "config.json");
  write_bert(c, "bert.", TensorDType::bf16);
  std::ofstream(dir_ / "config.json") << kBertConfig;
  std::ofstream(dir_ / "vocab.txt") << "[UNK]\n[CLS]\n[SEP]\n";
  const fs::path out = dir_.string() + "_pruned";
  fs::remove_all(out);
  const auto report = prune_folder(dir_.string(), out.string(), Pattern::blocks(4, 1), 0.75);
  EXPECT_EQ(report.size(), 12u);  // 2 layers x (query, key, value, attention out, 2 FFN)
  for (const auto& t : report) {
    EXPECT_NE(t.name.find("encoder.layer."), std::string::npos) << t.name;
    EXPECT_NEAR(t.block_sparsity, 0.75, 0.07) << t.name;
  }
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_TRUE(fs::exists(out / "vocab.txt"));
  const auto pruned = load_bert_weights(SafetensorsModel::open(out.string()), c);
  const auto original = load_bert_weights(SafetensorsModel::open(dir_.string()), c);
  EXPECT_EQ(pruned.word_embeddings, original.word_embeddings);  // untouched
  EXPECT_EQ(pruned.pooler.weight, original.pooler.weight);
  EXPECT_EQ(pruned.layers[0].query.bias, original.layers[0].query.bias);
  const auto pruned_file = SafetensorsFile::open((out / "model.safetensors").string());
  const TensorView& ids = pruned_file.tensor("bert.embeddings.position_ids");
  ASSERT_EQ(ids.dtype, TensorDType::i64);  // passed through byte for byte
  ASSERT_EQ(ids.bytes, static_cast<int64_t>(position_ids_.size() * 8));
  EXPECT_EQ(std::memcmp(ids.data, position_ids_.data(), position_ids_.size() * 8), 0);
  const auto& w = pruned.layers[1].intermediate.weight;
  EXPECT_NEAR(sparse::block_sparsity(w, 16, 8, {4, 1}), 0.75, 0.07);
  for (size_t i = 0; i < w.size(); ++i)  // kept values are the originals (bf16 round trip)
    if (w[i] != 0.0f) {
      ASSERT_EQ(w[i], original.layers[1].intermediate.weight[i]);
    }
  EXPECT_THROW(prune_folder(dir_.string(), dir_.string(), Pattern::blocks(4, 1), 0.5),
               InvalidArgument);
  EXPECT_THROW(prune_folder(dir_.string(), out.string(), Pattern::blocks(4, 1), 0.5, "(["),
               InvalidArgument);
  EXPECT_THROW(prune_folder(dir_.string(), out.string(), Pattern::blocks(4, 1), 1.0),
               InvalidArgument);
  fs::remove_all(out);
}

}  // namespace
}  // namespace sparq::models
