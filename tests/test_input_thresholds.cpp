// Activation sparsity in the decoder: the thresholds file (round trip, malformed files), the
// options' checks, the input observer, calibration reaching its target on held-out tokens, and a
// thresholded model's decode steps against the same model whose inputs are zeroed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "jit/cpu_features.hpp"
#include "small_llama.hpp"
#include "sparq/error.hpp"
#include "sparq/models/input_thresholds.hpp"
#include "sparq/models/llama_model.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

using models::ProjectionInput;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("sparq_test_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(InputThresholdsFile, RoundTrip) {
  models::InputThresholdsFile t;
  t.target_sparsity = 0.4;
  t.calibration_text = "GPL-2";
  t.calibration_tokens = 4096;
  t.layers.resize(3);
  for (int l = 0; l < 3; ++l)
    for (int p = 0; p < models::kProjectionInputs; ++p)
      t.layers[l].value[p] = 0.01f * static_cast<float>(l + 1) + static_cast<float>(p);
  const std::string path = temp_path("thresholds.json");
  models::save_input_thresholds(path, t);
  const auto back = models::load_input_thresholds(path, 3);
  EXPECT_EQ(back.target_sparsity, 0.4);
  EXPECT_EQ(back.calibration_text, "GPL-2");
  EXPECT_EQ(back.calibration_tokens, 4096);
  ASSERT_EQ(back.layers.size(), 3u);
  for (int l = 0; l < 3; ++l)
    for (int p = 0; p < models::kProjectionInputs; ++p)
      EXPECT_EQ(back.layers[l].value[p], t.layers[l].value[p]);
  EXPECT_NE(test::message_of<ModelFileError>([&] {
              models::load_input_thresholds(path, 2);
            }).find("holds thresholds for 3 layers; the model has 2"),
            std::string::npos);
  std::filesystem::remove(path);
}

TEST(InputThresholdsFile, MalformedFilesNameTheProblem) {
  const std::string path = temp_path("bad.json");
  const std::string layer = R"({"qkv": 0.1, "o": 0.1, "gate_up": 0.1, "down": 0.1})";
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "JSON"},
      {R"({"format": "other", "version": 1, "layers": []})", "\"format\" must be"},
      {R"({"format": "sparq-input-thresholds", "version": 2, "layers": []})",
       "\"version\" must be 1"},
      {R"({"format": "sparq-input-thresholds", "version": 1})", "\"layers\" must be an array"},
      {R"({"format": "sparq-input-thresholds", "version": 1, "layers": [{"qkv": 0.1}]})",
       "layers[0].o must be a number"},
      {R"({"format": "sparq-input-thresholds", "version": 1, "layers": [)" + layer +
           R"(, {"qkv": -1, "o": 0, "gate_up": 0, "down": 0}]})",
       "layers[1].qkv must be a finite number >= 0"},
      {R"({"format": "sparq-input-thresholds", "version": 1, "layers": [3]})",
       "layers[0] is not an object"},
  };
  for (const auto& [text, expect] : cases) {
    write(path, text);
    const std::string message =
        test::message_of<ModelFileError>([&] { models::load_input_thresholds(path, -1); });
    EXPECT_NE(message.find(expect), std::string::npos) << text << "\n -> " << message;
    EXPECT_NE(message.find(path), std::string::npos) << message;
  }
  std::filesystem::remove(path);
}

models::LlamaModel small_model(const std::vector<models::LayerInputThresholds>& thresholds,
                               DType dtype = DType::int8, float expected_sparsity = 0.9f) {
  const auto c = test::small_llama_config();
  const auto w = test::random_llama_weights(c, 0.0, 11);
  models::DecoderOptions o{dtype, Pattern::dense(), 2};
  o.input_thresholds = thresholds;
  o.expected_input_sparsity = expected_sparsity;
  return models::LlamaModel::build(c, w, o);
}

TEST(DecoderInputThresholds, WrongLayerCountIsRefused) {
  EXPECT_NE(test::message_of<InvalidArgument>([] {
              small_model({{}, {}, {}});
            }).find("input_thresholds holds 3 layers' thresholds; the model has 2 layers"),
            std::string::npos);
}

TEST(DecoderInputThresholds, ObserverSeesEveryProjectionInput) {
  const auto model = small_model({});
  const auto& c = model.config();
  auto session = model.start(16);
  std::vector<std::pair<int64_t, ProjectionInput>> seen;
  session.observe_inputs(
      [&](int64_t l, ProjectionInput p, const float* x, int64_t tokens, int64_t width) {
        seen.emplace_back(l, p);
        EXPECT_EQ(tokens, 3);
        const int64_t want = p == ProjectionInput::down ? c.intermediate_size
                             : p == ProjectionInput::o  ? c.num_heads * c.head_dim
                                                        : c.hidden_size;
        EXPECT_EQ(width, want) << models::to_string(p);
        for (int64_t i = 0; i < tokens * width; ++i) ASSERT_TRUE(std::isfinite(x[i]));
      });
  session.forward({1, 2, 3});
  ASSERT_EQ(seen.size(), static_cast<size_t>(c.num_layers * models::kProjectionInputs));
  EXPECT_EQ(seen[0], std::make_pair(int64_t{0}, ProjectionInput::qkv));
  EXPECT_EQ(seen[7], std::make_pair(int64_t{1}, ProjectionInput::down));
  session.observe_inputs({});
  session.forward({4});
  EXPECT_EQ(seen.size(), static_cast<size_t>(c.num_layers * models::kProjectionInputs));
}

// Calibration on random ids reaches its target on held-out chunks, and the thresholds it finds,
// applied, zero that fraction of the decode steps' inputs.
TEST(DecoderInputThresholds, CalibrationReachesItsTarget) {
  const auto model = small_model({});
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(model.config().vocab_size) - 1);
  std::vector<int32_t> tokens(16 * 12);
  for (auto& t : tokens) t = id(rng);
  for (double target : {0.25, 0.5}) {
    const auto r = models::calibrate_input_thresholds(model, tokens, 16, 8, 2, target);
    ASSERT_EQ(r.thresholds.layers.size(), 2u);
    ASSERT_EQ(r.held_out_sparsity.size(), 4u);
    for (int p = 0; p < models::kProjectionInputs; ++p)
      EXPECT_NEAR(r.held_out_sparsity[static_cast<size_t>(p)], target, 0.08)
          << models::to_string(static_cast<ProjectionInput>(p));
    EXPECT_EQ(r.thresholds.calibration_tokens, 8 * 16);
  }
  EXPECT_THROW(models::calibrate_input_thresholds(model, tokens, 16, 8, 2, 1.5), InvalidArgument);
  EXPECT_THROW(models::calibrate_input_thresholds(model, {1, 2}, 16, 8, 2, 0.4), InvalidArgument);
}

// Thresholds act in decode steps only: a prompt's prefill is the unthresholded model's, bit for
// bit; thresholds no entry is below match the plain model's decode step (int8: another kernel,
// the same quantized products), and real ones change it.
TEST(DecoderInputThresholds, PrefillUnchangedAndTinyThresholdsMatch) {
  for (DType dtype : {DType::int8, DType::f32}) {
    const auto plain = small_model({}, dtype);
    models::LayerInputThresholds big, tiny;
    for (int p = 0; p < models::kProjectionInputs; ++p) {
      big.value[p] = 0.3f;
      tiny.value[p] = 1e-30f;
    }
    const auto thresholded = small_model({big, big}, dtype);
    const auto barely = small_model({tiny, tiny}, dtype);
    // The same thresholds with a low expected sparsity: the usual decode kernels on zeroed inputs.
    const auto usual = small_model({big, big}, dtype, 0.3f);
    if (dtype == DType::int8 && jit::best_int8_isa() == jit::Isa::avx512_vnni) {
      EXPECT_EQ(thresholded.kernels()[0].second.decode_kernel,
                "jit:int8-sparse-input-decode:avx512_vnni");
      EXPECT_NE(usual.kernels()[0].second.decode_kernel,
                "jit:int8-sparse-input-decode:avx512_vnni");
    }
    const std::vector<int32_t> prompt{3, 1, 4, 1, 5, 9, 2};
    auto a = plain.start(16), b = thresholded.start(16), d = barely.start(16);
    EXPECT_EQ(a.forward(prompt, true), b.forward(prompt, true)) << to_string(dtype);
    d.forward(prompt);
    auto u = usual.start(16);
    u.forward(prompt);
    const auto la = a.forward({6}), lb = b.forward({6}), ld = d.forward({6}), lu = u.forward({6});
    test::expect_close(ld, la, 1e-4, "tiny thresholds");
    test::expect_close(lu, lb, 1e-4, "the same thresholds on the usual kernels");
    double diff = 0;
    for (size_t i = 0; i < la.size(); ++i) diff = std::max(diff, double(std::fabs(la[i] - lb[i])));
    EXPECT_GT(diff, 1e-3) << "thresholds of 0.3 changed nothing in a decode step";
  }
}

}  // namespace
}  // namespace sparq
