// Shared objects under concurrent callers: layers packed from several threads at once (the kernel
// cache generating the same kernels concurrently), one layer, one encoder and one decoder model
// used by several threads, sessions of one model decoding side by side. Every result must equal
// the one computed alone. The objects run single-threaded (threads = 1), so the concurrency is
// the callers' own std::threads: this is the set scripts/sanitize.sh --thread runs under
// ThreadSanitizer (oneTBB's and oneDNN's internal hand-offs, uninstrumented in Debian's builds,
// would be invisible to it; the multi-threaded layers are covered by the normal suite).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "small_bert.hpp"
#include "small_llama.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/llama_model.hpp"
#include "sparq/sparq.hpp"
#include "sparse/prune.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

constexpr int kCallers = 4;

// Runs f(caller) on kCallers threads at once and waits for them.
template <typename F>
void on_callers(F f) {
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; ++c) threads.emplace_back([&f, c] { f(c); });
  for (auto& t : threads) t.join();
}

struct LayerCase {
  DType dtype;
  Pattern pattern;
};

std::vector<LayerCase> layer_cases() {
  return {{DType::int8, Pattern::blocks(4, 1)}, {DType::int8, Pattern::blocks(16, 1)},
          {DType::int8, Pattern::n_of_m(2, 4)}, {DType::int8, Pattern::dense()},
          {DType::f32, Pattern::blocks(4, 1)},  {DType::f32, Pattern::n_of_m(2, 4)},
          {DType::bf16, Pattern::blocks(4, 1)}, {DType::bf16, Pattern::n_of_m(2, 4)},
          {DType::f32, Pattern::automatic()}};
}

LinearOptions single_threaded(const LayerCase& c) {
  LinearOptions o;
  o.dtype = c.dtype;
  o.pattern = c.pattern;
  o.threads = 1;
  return o;
}

std::vector<float> weight_for(const LayerCase& c, int64_t out, int64_t in) {
  auto w = test::random_floats(static_cast<size_t>(out * in), 900, -0.5f, 0.5f);
  if (c.pattern.kind == Pattern::Kind::dense || c.pattern.kind == Pattern::Kind::automatic)
    return sparse::prune(w, out, in, Pattern::blocks(4, 1), 0.7);
  return sparse::prune(w, out, in, c.pattern, c.pattern.kind == Pattern::Kind::n_m ? 0.5 : 0.7);
}

// Every caller packs every case itself (the first packs of a kernel key race in the cache) and
// runs it at 1, 3 and 40 tokens; afterwards the main thread packs and runs each case alone, and
// every caller's result must equal it bit for bit.
TEST(Concurrency, LayersPackedAndRunFromSeveralThreads) {
  const int64_t out = 48, in = 64;
  const int64_t token_counts[] = {1, 3, 40};
  const auto cases = layer_cases();
  std::vector<std::vector<float>> weights;
  const auto x = test::random_floats(static_cast<size_t>(40 * in), 901);
  for (const auto& c : cases) weights.push_back(weight_for(c, out, in));
  // results[caller][case * 3 + token count index]
  std::vector<std::vector<std::vector<float>>> results(kCallers);
  std::atomic<int> failures{0};
  on_callers([&](int caller) {
    try {
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto layer =
            SparseLinear::pack(weights[i].data(), out, in, nullptr, single_threaded(cases[i]));
        for (int64_t tokens : token_counts) {
          std::vector<float> y(static_cast<size_t>(tokens * out));
          layer.forward(x.data(), tokens, y.data());
          results[static_cast<size_t>(caller)].push_back(std::move(y));
        }
      }
    } catch (...) {
      ++failures;
    }
  });
  ASSERT_EQ(failures.load(), 0);
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(testing::Message()
                 << to_string(cases[i].dtype) << " " << cases[i].pattern.to_string());
    const auto layer =
        SparseLinear::pack(weights[i].data(), out, in, nullptr, single_threaded(cases[i]));
    for (size_t k = 0; k < 3; ++k) {
      std::vector<float> want(static_cast<size_t>(token_counts[k] * out));
      layer.forward(x.data(), token_counts[k], want.data());
      for (int caller = 0; caller < kCallers; ++caller)
        EXPECT_EQ(results[static_cast<size_t>(caller)][i * 3 + k], want)
            << "caller " << caller << ", " << token_counts[k] << " tokens";
    }
  }
}

// One packed layer per case, all callers at once on it (the activation scratch and the quantized
// input are per call).
TEST(Concurrency, OneLayerManyCallers) {
  const int64_t out = 40, in = 72;
  for (const auto& c : layer_cases()) {
    SCOPED_TRACE(testing::Message() << to_string(c.dtype) << " " << c.pattern.to_string());
    const auto w = weight_for(c, out, in);
    const auto layer = SparseLinear::pack(w.data(), out, in, nullptr, single_threaded(c));
    for (int64_t tokens : {2, 33}) {
      const auto x = test::random_floats(static_cast<size_t>(tokens * in), 902);
      std::vector<float> want(static_cast<size_t>(tokens * out));
      layer.forward(x.data(), tokens, want.data());
      std::atomic<int> mismatches{0};
      on_callers([&](int) {
        std::vector<float> y(want.size());
        for (int rep = 0; rep < 10; ++rep) {
          layer.forward(x.data(), tokens, y.data());
          if (y != want) ++mismatches;
        }
      });
      EXPECT_EQ(mismatches.load(), 0) << tokens << " tokens";
    }
  }
}

TEST(Concurrency, OneEncoderManyCallers) {
  const auto c = test::small_bert_config();
  const auto w = test::random_bert_weights(
      c, 903, [](int64_t) { return 0.3f; },
      [](const std::vector<float>& v, int64_t out, int64_t in) {
        return sparse::prune(v, out, in, Pattern::blocks(4, 1), 0.6);
      });
  models::EncoderInput in;
  in.batch = 2;
  in.seq = 12;
  in.lengths = {12, 7};
  for (int64_t i = 0; i < in.batch * in.seq; ++i) in.ids.push_back(static_cast<int32_t>(i % 50));
  for (DType dtype : {DType::f32, DType::int8, DType::bf16}) {
    SCOPED_TRACE(to_string(dtype));
    models::EncoderOptions o;
    o.dtype = dtype;
    o.pattern = Pattern::automatic();
    o.threads = 1;
    const auto enc = models::BertEncoder::build(c, w, o);
    const auto want = enc.forward(in);
    std::atomic<int> mismatches{0};
    on_callers([&](int) {
      for (int rep = 0; rep < 4; ++rep)
        if (enc.forward(in) != want) ++mismatches;
    });
    EXPECT_EQ(mismatches.load(), 0);
  }
}

// Sessions of one model, each on its own thread, decode different prompts side by side; each
// caller's logits equal those of the same prompt decoded alone.
TEST(Concurrency, DecoderSessionsSideBySide) {
  auto c = test::small_llama_config();
  c.max_position = 32;
  const models::LlamaWeights w = test::random_llama_weights(c, 0.0, 904);
  for (DType dtype : {DType::f32, DType::int8}) {
    SCOPED_TRACE(to_string(dtype));
    const auto model = models::LlamaModel::build(c, w, {dtype, Pattern::automatic(), 1});
    // Caller k: a prompt of 3 + k ids, then 4 greedy-free steps with fixed ids.
    auto run = [&](int k) {
      auto session = model.start(16);
      std::vector<int32_t> prompt;
      for (int i = 0; i < 3 + k; ++i) prompt.push_back(static_cast<int32_t>((7 * k + 3 * i) % 40));
      std::vector<float> logits = session.forward(prompt);
      for (int step = 0; step < 4; ++step) {
        const auto next = session.forward({static_cast<int32_t>((k + step) % 40)});
        logits.insert(logits.end(), next.begin(), next.end());
      }
      return logits;
    };
    std::vector<std::vector<float>> want;
    for (int k = 0; k < kCallers; ++k) want.push_back(run(k));
    std::atomic<int> mismatches{0};
    on_callers([&](int k) {
      if (run(k) != want[static_cast<size_t>(k)]) ++mismatches;
    });
    EXPECT_EQ(mismatches.load(), 0);
  }
}

}  // namespace
}  // namespace sparq
