// The Llama decoder against a plain double-precision reference of the same math (whole-sequence
// causal attention, no cache, its own rotary frequencies): fp32 dense and 4x1-sparse logits to
// 1e-4, int8 by cosine; the key/value cache (prompt then token by token equals one pass);
// grouped-query attention, tied and untied heads, linear and llama3 rope scaling; config.json
// parsing and loading a Hugging Face folder; bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>

#include "jit/cpu_features.hpp"
#include "models/cached_attention.hpp"
#include "models/llama_ops.hpp"
#include "models/llama_save.hpp"
#include "models/prefill_attention.hpp"
#include "models/prune_folder.hpp"
#include "small_llama.hpp"
#include "sparq/error.hpp"
#include "sparq/models/llama_model.hpp"
#include "sparq/models/sampler.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
#include "src/gguf.hpp"
#include "src/safetensors.hpp"
#include "test_util.hpp"

namespace sparq::models {
namespace {

LlamaConfig tiny_config() { return test::small_llama_config(); }

LlamaWeights random_weights(const LlamaConfig& c, double sparsity, uint32_t seed) {
  return test::random_llama_weights(c, sparsity, seed);
}

// The reference: every position of `ids` in one pass, in double precision.
std::vector<float> reference_logits(const LlamaConfig& c, const LlamaWeights& w,
                                    const std::vector<int32_t>& ids) {
  const int64_t n = static_cast<int64_t>(ids.size()), h = c.hidden_size, d = c.head_dim;
  const int64_t heads = c.num_heads, kv = c.num_kv_heads, inter = c.intermediate_size;
  using Vec = std::vector<double>;
  auto matvec = [](const LinearWeights& l, const Vec& x) {
    Vec y(static_cast<size_t>(l.out), 0.0);
    for (int64_t o = 0; o < l.out; ++o)
      for (int64_t i = 0; i < l.in; ++i) y[o] += double(l.weight[o * l.in + i]) * x[i];
    return y;
  };
  auto rms = [&](const Vec& x, const std::vector<float>& g) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + c.rms_norm_eps);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * g[i];
    return y;
  };
  // Rotary frequencies, scaled as the config says (written out here independently).
  std::vector<double> freq(static_cast<size_t>(d / 2));
  for (int64_t i = 0; i < d / 2; ++i) {
    double f = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(d));
    const RopeScaling& s = c.rope_scaling;
    if (s.kind == RopeScaling::Kind::linear) f /= s.factor;
    if (s.kind == RopeScaling::Kind::llama3) {
      const double wavelen = 2 * std::numbers::pi / f, old = double(s.original_max_position);
      if (wavelen > old / s.low_freq_factor)
        f = f / s.factor;
      else if (wavelen >= old / s.high_freq_factor) {
        const double t =
            (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - t) * f / s.factor + t * f;
      }
    }
    freq[static_cast<size_t>(i)] = f;
  }
  auto rope = [&](double* v, int64_t pos) {
    for (int64_t i = 0; i < d / 2; ++i) {
      const double a = v[i], b = v[i + d / 2], angle = double(pos) * freq[static_cast<size_t>(i)];
      v[i] = a * std::cos(angle) - b * std::sin(angle);
      v[i + d / 2] = b * std::cos(angle) + a * std::sin(angle);
    }
  };
  std::vector<Vec> x(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t)
    x[t] = Vec(w.embed.begin() + ids[t] * h, w.embed.begin() + (ids[t] + 1) * h);
  for (const LlamaLayerWeights& l : w.layers) {
    std::vector<Vec> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      const Vec xn = rms(x[t], l.attention_norm);
      q[t] = matvec(l.q, xn);
      k[t] = matvec(l.k, xn);
      v[t] = matvec(l.v, xn);
      for (int64_t hh = 0; hh < heads; ++hh) rope(q[t].data() + hh * d, t);
      for (int64_t hh = 0; hh < kv; ++hh) rope(k[t].data() + hh * d, t);
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec ctx(static_cast<size_t>(heads * d), 0.0);
      for (int64_t hh = 0; hh < heads; ++hh) {
        const int64_t g = hh / (heads / kv);
        Vec s(static_cast<size_t>(t + 1));
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q[t][hh * d + e] * k[j][g * d + e];
          s[j] = dot / std::sqrt(double(d));
          m = std::max(m, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - m));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t e = 0; e < d; ++e) ctx[hh * d + e] += s[j] / sum * v[j][g * d + e];
      }
      const Vec o = matvec(l.o, ctx);
      for (int64_t i = 0; i < h; ++i) x[t][i] += o[i];
    }
    for (int64_t t = 0; t < n; ++t) {
      const Vec xn = rms(x[t], l.mlp_norm);
      const Vec g = matvec(l.gate, xn), u = matvec(l.up, xn);
      Vec a(static_cast<size_t>(inter));
      for (int64_t i = 0; i < inter; ++i) a[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const Vec down = matvec(l.down, a);
      for (int64_t i = 0; i < h; ++i) x[t][i] += down[i];
    }
  }
  LinearWeights head = w.lm_head;
  if (head.weight.empty()) head = {c.vocab_size, h, w.embed, {}};
  std::vector<float> out;
  for (int64_t t = 0; t < n; ++t)
    for (double v : matvec(head, rms(x[t], w.final_norm))) out.push_back(static_cast<float>(v));
  return out;
}

const std::vector<int32_t> kPrompt = {1, 7, 3, 39, 0, 22, 22, 5, 17};

TEST(Llama, Fp32DenseAndSparseMatchTheReference) {
  for (double sparsity : {0.0, 0.75}) {
    for (bool tied : {false, true}) {
      SCOPED_TRACE("sparsity " + std::to_string(sparsity) + (tied ? " tied" : " untied"));
      auto c = tiny_config();
      c.tie_word_embeddings = tied;
      const auto w = random_weights(c, sparsity, 3);
      const Pattern pattern = sparsity > 0 ? Pattern::blocks(4, 1) : Pattern::dense();
      const auto model = LlamaModel::build(c, w, {DType::f32, pattern, 2});
      auto session = model.start(16);
      const auto logits = session.forward(kPrompt, true);
      test::expect_close(logits, reference_logits(c, w, kPrompt), 1e-4, "logits");
      EXPECT_EQ(session.position(), static_cast<int64_t>(kPrompt.size()));
    }
  }
}

TEST(Llama, RopeScalingVariantsMatchTheReference) {
  for (auto kind : {RopeScaling::Kind::linear, RopeScaling::Kind::llama3}) {
    auto c = tiny_config();
    c.head_dim = 16;  // enough frequencies to cross the llama3 band
    c.num_heads = 2;
    c.num_kv_heads = 1;
    c.rope_theta = 500000.0;
    c.rope_scaling = {kind, 8.0, 1.0, 4.0, 64};  // 64: one frequency falls in the blended band
    const auto w = random_weights(c, 0.0, 9);
    auto session = LlamaModel::build(c, w, {DType::f32, Pattern::dense(), 1}).start(16);
    test::expect_close(session.forward(kPrompt, true), reference_logits(c, w, kPrompt), 1e-4,
                       kind == RopeScaling::Kind::linear ? "linear" : "llama3");
  }
}

TEST(Llama, TheCacheGivesWhatOnePassGives) {
  const auto c = tiny_config();
  const auto w = random_weights(c, 0.5, 5);
  const auto model = LlamaModel::build(c, w, {DType::f32, Pattern::blocks(4, 1), 2});
  auto whole = model.start(16);
  const auto all = whole.forward(kPrompt, true);
  auto steps = model.start(16);
  const size_t prompt = 4, vocab = static_cast<size_t>(c.vocab_size);
  auto last = steps.forward({kPrompt.begin(), kPrompt.begin() + prompt});
  test::expect_close(last, {all.begin() + (prompt - 1) * vocab, all.begin() + prompt * vocab}, 1e-5,
                     "prompt");
  for (size_t t = prompt; t < kPrompt.size(); ++t) {
    last = steps.forward({kPrompt[t]});
    test::expect_close(last, {all.begin() + t * vocab, all.begin() + (t + 1) * vocab}, 1e-5,
                       "token " + std::to_string(t));
  }
}

TEST(Llama, Int8SparseLogitsAgreeWithFp32) {
  const auto c = tiny_config();
  const auto w = random_weights(c, 0.75, 11);
  const auto want = reference_logits(c, w, kPrompt);
  for (Pattern p : {Pattern::blocks(4, 1), Pattern::automatic()}) {
    auto session = LlamaModel::build(c, w, {DType::int8, p, 2}).start(16);
    const auto got = session.forward(kPrompt, true);
    for (size_t t = 0; t < kPrompt.size(); ++t)
      EXPECT_GE(test::cosine(&got[t * c.vocab_size], &want[t * c.vocab_size], c.vocab_size), 0.99)
          << "position " << t;
  }
}

TEST(Llama, BadInputsAreRejected) {
  const auto c = tiny_config();
  const auto model = LlamaModel::build(c, random_weights(c, 0.0, 1), {});
  auto s = model.start(4);
  EXPECT_THROW(s.forward({}), InvalidArgument);
  EXPECT_THROW(s.forward({40}), InvalidArgument);
  EXPECT_THROW(s.forward({-1}), InvalidArgument);
  EXPECT_THROW(s.forward({1, 2, 3, 4, 5}), InvalidArgument);  // beyond the capacity
  EXPECT_EQ(s.position(), 0);
  EXPECT_THROW(model.start(0), InvalidArgument);
  EXPECT_THROW(model.start(c.max_position + 1), InvalidArgument);
  auto w = random_weights(c, 0.0, 1);
  w.layers.pop_back();
  EXPECT_THROW(LlamaModel::build(c, w, {}), InvalidArgument);
}

constexpr const char* kConfig = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 40, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
  "tie_word_embeddings": false, "rope_scaling": null})";

TEST(LlamaConfigJson, ReadsAndChecks) {
  const auto c = LlamaConfig::from_json_text(kConfig, "config.json");
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.rope_scaling.kind, RopeScaling::Kind::none);
  const std::string llama3 = std::string(kConfig).replace(
      std::string(kConfig).find("null"), 4,
      R"({"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})");
  const auto c3 = LlamaConfig::from_json_text(llama3, "config.json");
  EXPECT_EQ(c3.rope_scaling.kind, RopeScaling::Kind::llama3);
  EXPECT_EQ(c3.rope_scaling.factor, 32.0);
  auto expect_error = [](const std::string& text, const std::string& fragment) {
    try {
      LlamaConfig::from_json_text(text, "config.json");
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = kConfig;
    return s.replace(s.find(from), from.size(), to);
  };
  expect_error(with("\"llama\"", "\"bert\""), "not a Llama-family decoder");
  expect_error(with("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
               "not a multiple of 3 key/value heads");
  expect_error(with("\"vocab_size\": 40,", ""), "no 'vocab_size'");
  expect_error(with("\"silu\"", "\"gelu\""), "SwiGLU");
  expect_error(with("null", R"({"rope_type": "yarn", "factor": 4.0})"), "rope type 'yarn'");
  expect_error(with("null", R"({"rope_type": 3, "factor": 4.0})"), "'rope_type' is not a string");
  expect_error("[1]", "not a JSON object");
  // Mistral: a sliding window shorter than the context applies to every layer; null or a window
  // covering the whole context is plain attention.
  const std::string mistral = with("\"llama\"", "\"mistral\"");
  auto window = [&](const std::string& value) {
    std::string s = mistral;
    return s.replace(s.find("\"rope_scaling\""), 0, "\"sliding_window\": " + value + ", ");
  };
  const auto cw = LlamaConfig::from_json_text(window("32"), "config.json");
  EXPECT_EQ(cw.sliding_window, 32);
  EXPECT_TRUE(cw.layer_slides(0) && cw.layer_slides(1));
  EXPECT_EQ(LlamaConfig::from_json_text(window("null"), "config.json").sliding_window, 0);
  EXPECT_EQ(LlamaConfig::from_json_text(window("64"), "config.json").sliding_window, 0);
  expect_error(window("0"), "sliding_window");
  // layer_types: which layers slide.
  auto typed = [&](const std::string& types) {
    std::string s = window("16");
    return s.replace(s.find("\"rope_scaling\""), 0, "\"layer_types\": " + types + ", ");
  };
  const auto ct = LlamaConfig::from_json_text(typed(R"(["sliding_attention", "full_attention"])"),
                                              "config.json");
  EXPECT_TRUE(ct.layer_slides(0));
  EXPECT_FALSE(ct.layer_slides(1));
  expect_error(typed(R"(["full_attention"])"), "not a list of 2 entries");
  expect_error(typed(R"(["full_attention", "chunked_attention"])"), "\"chunked_attention\"");
  // Qwen2: biases on q/k/v; a window it does not use is no window.
  const std::string qwen2 = with("\"llama\"", "\"qwen2\"");
  const auto cq = LlamaConfig::from_json_text(qwen2, "config.json");
  EXPECT_EQ(cq.architecture, "qwen2");
  EXPECT_TRUE(cq.qkv_bias);
  EXPECT_FALSE(c.qkv_bias);
  auto qwen2_window = [&](const std::string& fields) {
    std::string s = qwen2;
    return s.replace(s.find("\"rope_scaling\""), 0, fields + ", ");
  };
  EXPECT_NO_THROW(LlamaConfig::from_json_text(
      qwen2_window(R"("use_sliding_window": false, "sliding_window": 32)"), "config.json"));
  EXPECT_EQ(LlamaConfig::from_json_text(
                qwen2_window(R"("use_sliding_window": false, "sliding_window": 32)"), "config.json")
                .sliding_window,
            0);
  EXPECT_EQ(LlamaConfig::from_json_text(
                qwen2_window(R"("use_sliding_window": true, "sliding_window": 32)"), "config.json")
                .sliding_window,
            32);
  expect_error(qwen2_window(R"("layer_types": ["full_attention", "sliding_attention"])"),
               "no sliding_window applies");
  // transformers 5 keeps rope_theta and the rope type in rope_parameters.
  const auto c5 = LlamaConfig::from_json_text(
      with("\"rope_scaling\": null",
           R"("rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 8.0,
               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192})"),
      "config.json");
  EXPECT_EQ(c5.rope_theta, 500000.0);
  EXPECT_EQ(c5.rope_scaling.kind, RopeScaling::Kind::llama3);
  EXPECT_EQ(c5.rope_scaling.factor, 8.0);
}

// A tiny decoder of tests/fixtures (random weights, saved by transformers 5: rope_parameters,
// layer_types) against transformers: logits at every prompt position within 1e-4, the greedy
// continuation identical, and the int8 model's last logits close (tests/fixtures/
// make_decoder_references.py).
void expect_matches_transformers(const std::string& name, const std::string& architecture) {
  const std::string dir = std::string(SPARQ_FIXTURE_DIR);
  std::ifstream in(dir + "/" + name + "_reference.json");
  const auto ref = nlohmann::json::parse(in);
  const auto prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
  const auto greedy = ref["greedy_16"].get<std::vector<int32_t>>();
  const auto model =
      LlamaModel::load(dir + "/" + name + "_tiny", {DType::f32, Pattern::dense(), 1});
  EXPECT_EQ(model.config().architecture, architecture);
  const int64_t vocab = model.config().vocab_size;
  auto session = model.start(static_cast<int64_t>(prompt.size() + greedy.size()));
  const auto all = session.forward(prompt, true);
  double worst = 0;
  for (size_t t = 0; t < prompt.size(); ++t)
    for (int64_t k = 0; k < vocab; ++k)
      worst = std::max(worst,
                       std::fabs(double(all[t * vocab + k]) - ref["logits"][t][k].get<double>()));
  EXPECT_LE(worst, 1e-4) << "max abs logit error against transformers";
  std::vector<int32_t> generated;
  std::vector<float> last(all.end() - vocab, all.end());
  for (size_t i = 0; i < greedy.size(); ++i) {
    generated.push_back(
        static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin()));
    if (i + 1 < greedy.size()) last = session.forward({generated.back()});
  }
  EXPECT_EQ(generated, greedy);
  const auto int8 =
      LlamaModel::load(dir + "/" + name + "_tiny", {DType::int8, Pattern::dense(), 1});
  auto s8 = int8.start(static_cast<int64_t>(prompt.size()));
  const auto l8 = s8.forward(prompt);
  double worst8 = 0;
  for (int64_t k = 0; k < vocab; ++k)
    worst8 = std::max(worst8,
                      std::fabs(double(l8[k]) - ref["logits"][prompt.size() - 1][k].get<double>()));
  EXPECT_LE(worst8, 0.1) << "int8 last-position logits";
}

// load() reads, prunes and packs a layer at a time: the same model as pruning all the weights
// first and building from them.
TEST(LlamaFolder, LoadingLayerByLayerPrunesAsTheWholeWeights) {
  const std::string dir = std::string(SPARQ_FIXTURE_DIR) + "/qwen2_tiny";
  const DecoderOptions options{DType::f32, Pattern::blocks(4, 1), 2};
  const auto streamed = LlamaModel::load(dir, options, Pattern::blocks(4, 1), 0.5);
  const auto config = LlamaConfig::from_file(dir + "/config.json");
  auto weights = load_llama_weights(SafetensorsModel::open(dir), config);
  prune_projections(weights, Pattern::blocks(4, 1), 0.5);
  const auto whole = LlamaModel::build(config, weights, options);
  const std::vector<int32_t> ids = {5, 77, 301, 12, 190};
  auto a = streamed.start(8);
  auto b = whole.start(8);
  EXPECT_EQ(a.forward(ids, true), b.forward(ids, true));
  EXPECT_NE(streamed.kernels().front().second.kernel.find("4x1"), std::string::npos);
}

// Qwen2: q/k/v biases (non-zero here), rope_theta 1e6 from rope_parameters.
TEST(LlamaFolder, Qwen2MatchesTransformers) { expect_matches_transformers("qwen2", "qwen2"); }

// Llama 3.2-style: rope_theta 5e5 and llama3 rope scaling (transformers 5's rope_parameters; one
// frequency in the blended band), tied embeddings.
TEST(LlamaFolder, Llama3MatchesTransformers) { expect_matches_transformers("llama3", "llama"); }

// Mistral with a sliding window of 4: the 12-token prompt and the 16 generated tokens attend to
// their last 4 positions only, in prefill and through the cache.
TEST(LlamaFolder, MistralSlidingWindowMatchesTransformers) {
  expect_matches_transformers("mistral", "mistral");
}

// A sliding window much shorter than the session: the session keeps a rolling cache (window + 256
// slots, each written twice) and feeds long prompts in steps of 256. Against a session of the
// same model too short to roll (the full cache), through a 300-token prompt and 220 decode steps
// (positions far past the ring's size), and with every layer sliding or only some.
TEST(LlamaSession, RollingCacheMatchesTheFullCache) {
  for (const bool every_layer : {true, false}) {
    auto c = test::small_llama_config();
    c.max_position = 1024;
    c.sliding_window = 4;
    if (!every_layer) c.sliding_layers = {true, false};
    const auto w = test::random_llama_weights(c, 0.0, 5);
    const auto model = LlamaModel::build(c, w, {DType::f32, Pattern::dense(), 2});
    auto rolling = model.start(600);  // 2 x (4 + 256) < 600: rolls
    auto full = model.start(520);     // 2 x 260 >= 520: every position has its slot
    std::vector<int32_t> prompt(300);
    for (size_t i = 0; i < prompt.size(); ++i)
      prompt[i] = static_cast<int32_t>((i * 7 + 3) % static_cast<size_t>(c.vocab_size));
    test::expect_close(rolling.forward(prompt, true), full.forward(prompt, true), 1e-5,
                       "300-token prompt");
    for (int step = 0; step < 220; ++step) {
      const int32_t id = static_cast<int32_t>((step * 13 + 1) % c.vocab_size);
      const auto a = rolling.forward({id}), b = full.forward({id});
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i)
        ASSERT_NEAR(a[i], b[i], 1e-5 * (1 + std::fabs(b[i]))) << "step " << step << ", logit " << i;
    }
    EXPECT_EQ(rolling.position(), 520);
  }
}

TEST(LlamaFolder, LoadsTheHuggingFaceNaming) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "sparq_llama_folder";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto c = LlamaConfig::from_json_text(kConfig, "config.json");
  const auto w = random_weights(c, 0.0, 21);
  std::vector<TensorToWrite> tensors;
  auto add = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> shape) {
    tensors.push_back({name, TensorDType::f32, std::move(shape), v.data()});
  };
  add("model.embed_tokens.weight", w.embed, {c.vocab_size, c.hidden_size});
  for (int64_t n = 0; n < c.num_layers; ++n) {
    const auto& l = w.layers[static_cast<size_t>(n)];
    const std::string p = "model.layers." + std::to_string(n) + ".";
    add(p + "input_layernorm.weight", l.attention_norm, {c.hidden_size});
    add(p + "post_attention_layernorm.weight", l.mlp_norm, {c.hidden_size});
    for (auto [name, lin] : {std::pair{"self_attn.q_proj", &l.q},
                             {"self_attn.k_proj", &l.k},
                             {"self_attn.v_proj", &l.v},
                             {"self_attn.o_proj", &l.o},
                             {"mlp.gate_proj", &l.gate},
                             {"mlp.up_proj", &l.up},
                             {"mlp.down_proj", &l.down}})
      add(p + name + ".weight", lin->weight, {lin->out, lin->in});
  }
  add("model.norm.weight", w.final_norm, {c.hidden_size});
  std::ofstream(dir / "config.json") << kConfig;
  write_safetensors((dir / "model.safetensors").string(), tensors);
  try {
    LlamaModel::load(dir.string(), {});
    ADD_FAILURE() << "loaded without lm_head";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight"), std::string::npos) << e.what();
  }
  add("lm_head.weight", w.lm_head.weight, {c.vocab_size, c.hidden_size});
  write_safetensors((dir / "model.safetensors").string(), tensors);
  auto session = LlamaModel::load(dir.string(), {DType::f32, Pattern::dense(), 1}).start(16);
  test::expect_close(session.forward(kPrompt, true), reference_logits(c, w, kPrompt), 1e-4,
                     "loaded");

  // sparq-prune's selection for a Llama folder: the 7 projections of each layer, nothing else.
  const fs::path pruned = dir.string() + "_pruned";
  EXPECT_EQ(default_prune_regex(dir.string()), kDecoderLinearRegex);
  const auto report = prune_folder(dir.string(), pruned.string(), Pattern::blocks(4, 1), 0.5,
                                   default_prune_regex(dir.string()));
  EXPECT_EQ(report.size(), 14u);
  for (const auto& t : report) EXPECT_NE(t.name.find("_proj.weight"), std::string::npos);
  const auto pc = LlamaConfig::from_file((pruned / "config.json").string());
  const auto pw = load_llama_weights(SafetensorsModel::open(pruned.string()), pc);
  EXPECT_EQ(pw.embed, w.embed);
  EXPECT_EQ(pw.lm_head.weight, w.lm_head.weight);
  EXPECT_NEAR(sparse::block_sparsity(pw.layers[1].down.weight, 32, 48, {4, 1}), 0.5, 0.05);
  auto pruned_session =
      LlamaModel::load(pruned.string(), {DType::f32, Pattern::blocks(4, 1), 1}).start(16);
  test::expect_close(pruned_session.forward(kPrompt, true), reference_logits(c, pw, kPrompt), 1e-4,
                     "pruned");
  fs::remove_all(dir);
  fs::remove_all(pruned);
}

TEST(LlamaFolder, SavedFolderLoadsBackTheSameModel) {
  namespace fs = std::filesystem;
  for (const bool tied : {false, true}) {
    const fs::path dir = fs::temp_directory_path() / "sparq_llama_saved";
    fs::remove_all(dir);
    LlamaConfig c = tiny_config();
    c.tie_word_embeddings = tied;
    c.rope_scaling = {RopeScaling::Kind::llama3, 8.0, 1.0, 4.0, 16};
    const auto w = random_weights(c, 0.5, 31);
    save_llama_folder(dir.string(), c, w);
    const auto back = LlamaConfig::from_file((dir / "config.json").string());
    EXPECT_EQ(back.num_kv_heads, c.num_kv_heads);
    EXPECT_EQ(back.head_dim, c.head_dim);
    EXPECT_EQ(back.tie_word_embeddings, tied);
    EXPECT_EQ(back.rope_scaling.kind, RopeScaling::Kind::llama3);
    EXPECT_EQ(back.rope_scaling.original_max_position, 16);
    const auto bw = load_llama_weights(SafetensorsModel::open(dir.string()), back);
    EXPECT_EQ(bw.embed, w.embed);
    EXPECT_EQ(bw.layers[1].down.weight, w.layers[1].down.weight);
    EXPECT_EQ(bw.layers[0].k.weight, w.layers[0].k.weight);
    EXPECT_EQ(bw.final_norm, w.final_norm);
    EXPECT_EQ(bw.lm_head.weight, w.lm_head.weight);
    auto session = LlamaModel::load(dir.string(), {DType::f32, Pattern::dense(), 1}).start(16);
    test::expect_close(session.forward(kPrompt, true), reference_logits(c, w, kPrompt), 1e-4,
                       tied ? "tied" : "untied");
    fs::remove_all(dir);
  }
  LlamaConfig c = tiny_config();
  auto w = random_weights(c, 0.0, 32);
  w.layers.pop_back();
  EXPECT_THROW(save_llama_folder("/tmp/sparq_llama_unsaved", c, w), InvalidArgument);
  w = random_weights(c, 0.0, 32);
  w.lm_head = {};
  EXPECT_THROW(save_llama_folder("/tmp/sparq_llama_unsaved", c, w), InvalidArgument);
  w = random_weights(c, 0.0, 32);
  c.rope_freq_factors = {1, 2, 4, 8};  // no config.json form
  EXPECT_THROW(save_llama_folder("/tmp/sparq_llama_unsaved", c, w), InvalidArgument);
}

TEST(LlamaOps, VectorRmsNormMatchesPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (int64_t width : {1, 7, 8, 9, 64, 130, 2048}) {
    const int64_t rows = 3;
    const auto x = test::random_floats(static_cast<size_t>(rows * width), 5, -4, 4);
    const auto w = test::random_floats(static_cast<size_t>(width), 6, 0.5f, 1.5f);
    std::vector<float> a(x.size(), 9.0f), b(x.size(), 8.0f);
    models::detail::rms_norm_rows_avx2(x.data(), rows, width, w.data(), 1e-5, a.data());
    models::detail::rms_norm_rows_portable(x.data(), rows, width, w.data(), 1e-5, b.data());
    test::expect_close(a, b, 1e-6, "rms_norm width " + std::to_string(width));
    if (jit::isa_available(jit::Isa::avx512)) {
      std::vector<float> c(x.size(), 7.0f);
      models::detail::rms_norm_rows_avx512(x.data(), rows, width, w.data(), 1e-5, c.data());
      test::expect_close(c, b, 1e-6, "avx512 rms_norm width " + std::to_string(width));
    }
  }
}

TEST(CachedAttention, VectorMatchesPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (int64_t group : {1, 3, 8})
    for (int64_t d : {8, 64, 72, 128})
      for (int64_t len : {1, 2, 3, 8, 16, 17, 200, 643}) {
        const int64_t stride = 3 * d + 8;
        const auto q = test::random_floats(static_cast<size_t>(group * d), 1, -2, 2);
        const auto k = test::random_floats(static_cast<size_t>(len * stride), 2, -2, 2);
        const auto v = test::random_floats(static_cast<size_t>(len * stride), 3, -2, 2);
        std::vector<float> scratch(static_cast<size_t>(group * len));
        std::vector<float> a(static_cast<size_t>(group * d)), b(a);
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        detail::cached_attention_avx2(q.data(), group, k.data(), v.data(), len, d, stride, scale,
                                      scratch.data(), a.data());
        detail::cached_attention_portable(q.data(), group, k.data(), v.data(), len, d, stride,
                                          scale, scratch.data(), b.data());
        test::expect_close(a, b, 1e-5,
                           "group " + std::to_string(group) + " d " + std::to_string(d) + " len " +
                               std::to_string(len));
      }
}

TEST(PrefillAttention, EachTokenMatchesTheCachedAttentionOverItsPositions) {
  // Prompts that start after cached positions (first > 0) and not at block or vector
  // boundaries, blocks of 12 tokens with a short last one, head sizes with 8-column tails of the
  // tiles; each token against the portable cached attention over positions 0..first + t.
  for (int64_t d : {8, 64, 72})
    for (auto [first, tokens] :
         {std::pair<int64_t, int64_t>{0, 5}, {0, 12}, {0, 37}, {3, 13}, {17, 24}, {100, 61}}) {
      if (!prefill_attention_available(d)) GTEST_SKIP() << "needs AVX2";
      const int64_t keys = first + tokens, width = (keys + 7) / 8 * 8;
      const int64_t q_stride = 2 * d + 8, out_stride = d + 5;
      const auto q = test::random_floats(static_cast<size_t>(tokens * q_stride), 4, -2, 2);
      const auto k = test::random_floats(static_cast<size_t>(keys * d), 5, -2, 2);
      const auto v = test::random_floats(static_cast<size_t>(keys * d), 6, -2, 2);
      const float scale = 1.0f / std::sqrt(static_cast<float>(d));
      std::vector<float> kt(static_cast<size_t>(d * width), 42.0f), scratch;
      transpose_keys(k.data(), keys, d, d, kt.data(), width);
      std::vector<float> got(static_cast<size_t>(tokens * out_stride), 42.0f);
      prefill_attention_head(q.data(), q_stride, kt.data(), width, v.data(), first, tokens, d,
                             scale, got.data(), out_stride, scratch);
      const std::string what = "d " + std::to_string(d) + " first " + std::to_string(first) +
                               " tokens " + std::to_string(tokens);
      for (int64_t t = 0; t < tokens; ++t) {
        std::vector<float> want(static_cast<size_t>(d)), scores(static_cast<size_t>(keys));
        detail::cached_attention_portable(q.data() + t * q_stride, 1, k.data(), v.data(),
                                          first + t + 1, d, d, scale, scores.data(), want.data());
        const std::vector<float> row(got.begin() + t * out_stride,
                                     got.begin() + t * out_stride + d);
        test::expect_close(row, want, 1e-5, what + " token " + std::to_string(t));
        for (int64_t g = d; g < out_stride; ++g)
          ASSERT_EQ(got[static_cast<size_t>(t * out_stride + g)], 42.0f) << what;
      }
    }
}

TEST(Sampler, GreedyTopKTopPAndSeeds) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, -INFINITY, 2.5f};
  EXPECT_EQ(Sampler({}).next(logits), 1);  // greedy
  // top_k 1 is greedy at any temperature; top_p tiny keeps only the best.
  EXPECT_EQ(Sampler({5.0f, 1, 1.0f, 3}).next(logits), 1);
  EXPECT_EQ(Sampler({5.0f, 0, 1e-6f, 3}).next(logits), 1);
  // top_k 2 at a high temperature: only ids 1 and 4, roughly evenly; never the -inf one.
  Sampler two({100.0f, 2, 1.0f, 7});
  int counts[5] = {};
  for (int i = 0; i < 2000; ++i) ++counts[two.next(logits)];
  EXPECT_EQ(counts[0] + counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 800);
  EXPECT_GT(counts[4], 800);
  // Temperature 1, no limits: frequencies follow the softmax.
  Sampler all({1.0f, 0, 1.0f, 11});
  int freq[5] = {};
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++freq[all.next(logits)];
  double z = 0;
  for (float l : logits) z += std::isfinite(l) ? std::exp(double(l)) : 0.0;
  for (int i = 0; i < 5; ++i) {
    const double p = std::isfinite(logits[i]) ? std::exp(double(logits[i])) / z : 0.0;
    EXPECT_NEAR(freq[i] / double(n), p, 0.015) << "id " << i;
  }
  // The same seed repeats; another differs somewhere.
  Sampler a({1.0f, 0, 0.9f, 42}), b({1.0f, 0, 0.9f, 42}), c({1.0f, 0, 0.9f, 43});
  bool differs = false;
  for (int i = 0; i < 200; ++i) {
    const int32_t x = a.next(logits);
    EXPECT_EQ(x, b.next(logits));
    differs |= x != c.next(logits);
  }
  EXPECT_TRUE(differs);
  EXPECT_THROW(Sampler({-1.0f, 0, 1.0f, 0}), InvalidArgument);
  EXPECT_THROW(Sampler({1.0f, 0, 0.0f, 0}), InvalidArgument);
  EXPECT_THROW(Sampler({}).next({-INFINITY, NAN}), InvalidArgument);
}

// llama.cpp's converter interleaves each head's rows for its rotary layout.
std::vector<float> permute_heads(const LinearWeights& l, int64_t heads) {
  const int64_t d = l.out / heads, half = d / 2;
  std::vector<float> out(l.weight.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j)
        std::copy_n(l.weight.data() + (h * d + j * half + i) * l.in, l.in,
                    out.data() + (h * d + 2 * i + j) * l.in);
  return out;
}

// A tiny llama GGUF as llama.cpp's converter writes it (q/k rows interleaved, ggml dims order).
struct TinyGguf {
  std::vector<std::pair<std::string, GgufValue>> meta;
  std::vector<std::vector<float>> keep;  // the permuted q/k, which `tensors` points into
  std::vector<GgufTensorToWrite> tensors;
};

TinyGguf tiny_gguf(const LlamaWeights& w, bool tied) {
  TinyGguf g;
  g.meta = {{"general.architecture", gguf_string("llama")},
            {"llama.embedding_length", gguf_uint32(32)},
            {"llama.feed_forward_length", gguf_uint32(48)},
            {"llama.block_count", gguf_uint32(2)},
            {"llama.attention.head_count", gguf_uint32(4)},
            {"llama.attention.head_count_kv", gguf_uint32(2)},
            {"llama.context_length", gguf_uint32(64)},
            {"llama.rope.freq_base", gguf_float32(10000.0f)},
            {"llama.attention.layer_norm_rms_epsilon", gguf_float32(1e-5f)},
            {"tokenizer.ggml.tokens", gguf_strings(std::vector<std::string>(40, "t"))}};
  auto add = [&](const std::string& name, const std::vector<float>& v, std::vector<int64_t> dims) {
    g.tensors.push_back({name, std::move(dims), v.data()});
  };
  add("token_embd.weight", w.embed, {32, 40});
  g.keep.reserve(4);
  for (int64_t n = 0; n < 2; ++n) {
    const auto& l = w.layers[static_cast<size_t>(n)];
    const std::string p = "blk." + std::to_string(n) + ".";
    add(p + "attn_norm.weight", l.attention_norm, {32});
    g.keep.push_back(permute_heads(l.q, 4));
    add(p + "attn_q.weight", g.keep.back(), {32, 32});
    g.keep.push_back(permute_heads(l.k, 2));
    add(p + "attn_k.weight", g.keep.back(), {32, 16});
    add(p + "attn_v.weight", l.v.weight, {32, 16});
    add(p + "attn_output.weight", l.o.weight, {32, 32});
    add(p + "ffn_norm.weight", l.mlp_norm, {32});
    add(p + "ffn_gate.weight", l.gate.weight, {32, 48});
    add(p + "ffn_up.weight", l.up.weight, {32, 48});
    add(p + "ffn_down.weight", l.down.weight, {48, 32});
  }
  add("output_norm.weight", w.final_norm, {32});
  if (!tied) add("output.weight", w.lm_head.weight, {32, 40});
  return g;
}

TEST(LlamaGguf, LoadsWhatLlamaCppsConverterWrites) {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "sparq_llama.gguf";
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    auto c = tiny_config();
    c.tie_word_embeddings = tied;
    const auto w = random_weights(c, 0.0, 31);
    TinyGguf g = tiny_gguf(w, tied);
    write_gguf(path.string(), g.meta, g.tensors);
    auto session = LlamaModel::load(path.string(), {DType::f32, Pattern::dense(), 1}).start(16);
    test::expect_close(session.forward(kPrompt, true), reference_logits(c, w, kPrompt), 1e-4,
                       "gguf");
    g.tensors.pop_back();  // a missing tensor is named
    if (!tied) {
      write_gguf(path.string(), g.meta, g.tensors);
      const auto file = GgufFile::open(path.string());
      const auto cfg = llama_config_from_gguf(file);
      EXPECT_TRUE(cfg.tie_word_embeddings);  // no output.weight: tied
    }
    g.meta[0].second = gguf_string("gpt2");
    write_gguf(path.string(), g.meta, g.tensors);
    try {
      LlamaModel::load(path.string(), {});
      ADD_FAILURE() << "loaded a gpt2 file";
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find("'gpt2'"), std::string::npos) << e.what();
    }
  }
  fs::remove(path);
}

// Llama 3.1 GGUF files carry the llama3 rope scaling as per-frequency divisors
// (rope_freqs.weight), computed by llama.cpp's converter from the config; the model must compute
// what the Hugging Face config's llama3 scaling gives.
TEST(LlamaGguf, RopeFreqsCarryTheLlama3Scaling) {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "sparq_llama_rope_freqs.gguf";
  auto c = tiny_config();
  c.tie_word_embeddings = true;
  // head_dim 8: wavelengths 6.3, 63, 628, 6283 against 64 / 1 and 64 / 4: one frequency kept,
  // one blended, two divided by the factor.
  c.rope_scaling = {RopeScaling::Kind::llama3, 8.0, 1.0, 4.0, 64};
  const auto w = random_weights(c, 0.0, 33);
  std::vector<float> factors;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double f =
        std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    const double wavelen = 2 * std::numbers::pi / f, low = 64.0 / 1.0, high = 64.0 / 4.0;
    if (wavelen < high) {
      factors.push_back(1.0f);
    } else if (wavelen > low) {
      factors.push_back(8.0f);
    } else {
      const double smooth = (64.0 / wavelen - 1.0) / (4.0 - 1.0);
      factors.push_back(static_cast<float>(1.0 / ((1 - smooth) / 8.0 + smooth)));
    }
  }
  TinyGguf g = tiny_gguf(w, true);
  g.tensors.push_back({"rope_freqs.weight", {4}, factors.data()});
  write_gguf(path.string(), g.meta, g.tensors);
  const auto cfg = llama_config_from_gguf(GgufFile::open(path.string()));
  EXPECT_EQ(cfg.rope_freq_factors, factors);
  auto session = LlamaModel::load(path.string(), {DType::f32, Pattern::dense(), 1}).start(64);
  std::vector<int32_t> long_prompt;
  for (int i = 0; i < 60; ++i) long_prompt.push_back((i * 7 + 3) % 40);
  test::expect_close(session.forward(long_prompt, true), reference_logits(c, w, long_prompt), 1e-4,
                     "rope_freqs");
  // Without the factors the model is a different one: the check above can fail.
  auto plain = c;
  plain.rope_scaling = {};
  const auto a = reference_logits(plain, w, long_prompt), b = reference_logits(c, w, long_prompt);
  double differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ = std::max(differ, std::fabs(double{a[i]} - b[i]));
  EXPECT_GT(differ, 1e-3);
  for (const auto& bad : {std::vector<float>{1, 2, 3}, std::vector<float>{1, 0, 8, 8}}) {
    g.tensors.back() = {"rope_freqs.weight", {static_cast<int64_t>(bad.size())}, bad.data()};
    write_gguf(path.string(), g.meta, g.tensors);
    try {
      llama_config_from_gguf(GgufFile::open(path.string()));
      ADD_FAILURE() << "read bad rope_freqs";
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find("rope_freqs.weight"), std::string::npos) << e.what();
    }
  }
  fs::remove(path);
}

}  // namespace
}  // namespace sparq::models
