#include "bench/llama_eval.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>

#include "bench/median.hpp"
#include "bench/peak_memory.hpp"
#include "models/llama_save.hpp"
#include "sparq/sparq.hpp"

namespace sparq::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Speeds {
  double pp = 0, tg = 0;  // tokens per second
};

Speeds run_once(const models::LlamaModel& model, const std::vector<int32_t>& prompt, int gen) {
  auto session = model.start(static_cast<int64_t>(prompt.size()) + gen);
  const auto t0 = Clock::now();
  std::vector<float> logits = session.forward(prompt);
  const auto t1 = Clock::now();
  for (int i = 0; i < gen; ++i) {
    const auto next =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    logits = session.forward({next});
  }
  const auto t2 = Clock::now();
  return {static_cast<double>(prompt.size()) / std::chrono::duration<double>(t1 - t0).count(),
          gen / std::chrono::duration<double>(t2 - t1).count()};
}

}  // namespace

namespace {

nlohmann::json measure(const LlamaEvalSpec& spec, const models::LlamaModel& sparse,
                       const models::LlamaModel* dense, double load_s, double pack_s,
                       double peak_mib) {
  const models::LlamaConfig& config = sparse.config();
  const bool prune = spec.sparsity > 0 && spec.pattern.kind != Pattern::Kind::dense;

  std::mt19937 rng(spec.seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(config.vocab_size - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(spec.prompt_tokens));
  for (int32_t& t : prompt) t = id(rng);

  std::vector<double> pp, tg, dense_pp, dense_tg;
  for (int i = 0; i < spec.warmup + spec.iters; ++i) {
    std::fprintf(stderr, "\rsparq-eval: run %d/%d", i + 1, spec.warmup + spec.iters);
    // Alternate which runs first, so that neither always finds the caches the other left.
    Speeds d{};
    if (dense && i % 2) d = run_once(*dense, prompt, spec.gen_tokens);
    const Speeds s = run_once(sparse, prompt, spec.gen_tokens);
    if (dense && i % 2 == 0) d = run_once(*dense, prompt, spec.gen_tokens);
    if (i < spec.warmup) continue;
    pp.push_back(s.pp);
    tg.push_back(s.tg);
    dense_pp.push_back(d.pp);
    dense_tg.push_back(d.tg);
  }
  std::fprintf(stderr, "\r%40s\r", "");
  nlohmann::json j = {
      {"model", spec.name},
      {"dtype", to_string(spec.dtype)},
      {"pattern", spec.pattern.to_string()},
      {"sparsity", prune ? spec.sparsity : 0.0},
      {"threads", sparse.kernels().front().second.threads},
      {"isa", cpu_isa_name()},
      {"cpu_features", cpu_features_name()},
      {"prompt_tokens", spec.prompt_tokens},
      {"gen_tokens", spec.gen_tokens},
      {"iters", spec.iters},
      {"load_s", load_s},
      {"pack_s", pack_s},
      {"peak_resident_mib", peak_mib},
      {"packed_mib", double(sparse.packed_bytes()) / (1 << 20)},
      {"input_sparsity",
       spec.input_thresholds.layers.empty() ? 0.0 : spec.input_thresholds.target_sparsity},
      {"pp_tokens_per_s", median(pp)},
      {"tg_tokens_per_s", median(tg)}};
  nlohmann::json kernels = nlohmann::json::object();
  for (const auto& [kind, info] : sparse.kernels())
    kernels[kind] = info.kernel + (info.decode_kernel.empty() ? "" : " / " + info.decode_kernel);
  j["kernels"] = kernels;
  if (dense) {
    j["dense_pp_tokens_per_s"] = median(dense_pp);
    j["dense_tg_tokens_per_s"] = median(dense_tg);
    j["pp_speedup"] = median(pp) / median(dense_pp);
    j["tg_speedup"] = median(tg) / median(dense_tg);
    const auto info = dense->kernels().front().second;
    j["dense_kernel"] =
        info.kernel + (info.decode_kernel.empty() ? "" : " / " + info.decode_kernel);
  }
  return j;
}

}  // namespace

nlohmann::json run_llama_eval(const LlamaEvalSpec& spec, const models::LlamaConfig& config,
                              models::LlamaWeights weights) {
  std::optional<models::LlamaModel> dense;
  if (spec.compare_dense) {
    std::fprintf(stderr, "sparq-eval: packing the dense model\n");
    dense.emplace(
        models::LlamaModel::build(config, weights, {spec.dtype, Pattern::dense(), spec.threads}));
  }
  const bool prune = spec.sparsity > 0 && spec.pattern.kind != Pattern::Kind::dense;
  if (prune)
    std::fprintf(stderr, "sparq-eval: pruning to %s at %.0f%%\n", spec.pattern.to_string().c_str(),
                 100 * spec.sparsity);
  models::prune_projections(weights, spec.pattern, spec.sparsity);
  if (!spec.save_dir.empty()) {
    std::fprintf(stderr, "sparq-eval: writing the %s weights to %s\n", prune ? "pruned" : "dense",
                 spec.save_dir.c_str());
    models::save_llama_folder(spec.save_dir, config, weights);
  }
  std::fprintf(stderr, "sparq-eval: packing the %s model\n", prune ? "pruned" : "dense");
  const auto t_pack = Clock::now();
  models::DecoderOptions options{spec.dtype, spec.pattern, spec.threads};
  models::use_input_thresholds(options, spec.input_thresholds);
  const auto sparse = models::LlamaModel::build(config, weights, options);
  const double pack_s = std::chrono::duration<double>(Clock::now() - t_pack).count();
  weights = {};
  // After loading and packing (the fp32 weights and, with --compare dense, the dense model too).
  const double peak_mib = peak_resident_mib();
  return measure(spec, sparse, dense ? &*dense : nullptr, spec.read_seconds + pack_s, pack_s,
                 peak_mib);
}

nlohmann::json run_llama_eval(const LlamaEvalSpec& spec, const models::LlamaModel& model,
                              double load_seconds, double peak_mib) {
  return measure(spec, model, nullptr, load_seconds, load_seconds, peak_mib);
}

}  // namespace sparq::bench
