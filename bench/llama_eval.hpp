// sparq-eval for decoders: prompt processing (prefill of --prompt-tokens in one call) and text
// generation (--gen-tokens decode steps, each feeding back the argmax) speeds, like llama-bench's
// pp and tg, optionally beside the unpruned model of the same dtype in the same process.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sparq/models/input_thresholds.hpp"
#include "sparq/models/llama_model.hpp"

namespace sparq::bench {

struct LlamaEvalSpec {
  std::string name;  // for the report
  DType dtype = DType::int8;
  Pattern pattern = Pattern::automatic();
  double sparsity = 0.0;
  int threads = 0;
  int prompt_tokens = 512, gen_tokens = 128;
  int iters = 3, warmup = 1;
  bool compare_dense = false;
  uint32_t seed = 1;
  std::string save_dir;     // non-empty: the (pruned) weights are also written here as a folder
  double read_seconds = 0;  // reading (or making) the weights, before run_llama_eval
  // The sparse side's activation-sparsity thresholds (empty: none).
  models::InputThresholdsFile input_thresholds;  // no layers: none
};

// weights: unpruned; pruned here (every attention and MLP projection, by magnitude) for the
// sparse side, and saved as a Hugging Face folder when spec.save_dir is set. Returns the report
// (JSON keys model, dtype, pattern, sparsity, threads, prompt_tokens, gen_tokens, pp_tokens_per_s,
// tg_tokens_per_s, kernels, and with compare_dense dense_pp_tokens_per_s, dense_tg_tokens_per_s,
// pp_speedup, tg_speedup).
nlohmann::json run_llama_eval(const LlamaEvalSpec& spec, const models::LlamaConfig& config,
                              models::LlamaWeights weights);
// The same for a model already built (no dense side, nothing saved): load_seconds and
// peak_resident_mib as measured by the caller after loading.
nlohmann::json run_llama_eval(const LlamaEvalSpec& spec, const models::LlamaModel& model,
                              double load_seconds, double peak_mib);

}  // namespace sparq::bench
