// sparq-generate: text generation with a Llama-family decoder on sparq, streaming the text and
// ending with the prompt and generation speeds.
//
//   sparq-generate --model FILE.gguf --prompt "..." --max-tokens 64 [--dtype int8]
//                  [--pattern auto] [--sparsity 0.7] [--threads 2] [--temperature 0.8 --top-k 40
//                  --top-p 0.95 --seed 1]
//   sparq-generate --model DIR --prompt "..." ...   (a Hugging Face folder with a byte-level BPE
//                  tokenizer.json; --prompt-ids 1,2,3 takes token ids instead)
// --sparsity > 0 prunes every attention and MLP projection by magnitude to --pattern on load;
// --input-thresholds FILE applies activation-sparsity thresholds (sparq-eval --calibrate).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/passive_omp.hpp"
#include "bench/peak_memory.hpp"
#include "sparq/error.hpp"
#include "sparq/models/input_thresholds.hpp"
#include "sparq/models/llama_model.hpp"
#include "sparq/models/sampler.hpp"
#include "sparq/models/tokenizer.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using sparq::models::LlamaConfig;

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw sparq::InvalidArgument("--prompt-ids: '" + item + "' is not a token id");
    }
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  sparq::bench::restart_with_passive_openmp(argv);
  CLI::App app{"sparq-generate: text generation with a Llama-family decoder on sparq"};
  std::string model_path, prompt, prompt_ids, dtype = "f32", pattern = "auto";
  int max_tokens = 64, threads = 0;
  double sparsity = 0.0;
  sparq::models::SamplingOptions sampling;
  app.add_option("--model", model_path, "a GGUF file (llama) or a Hugging Face folder")->required();
  auto* text = app.add_option("--prompt", prompt,
                              "the prompt text (the GGUF file's or the folder's tokenizer.json)");
  auto* ids = app.add_option("--prompt-ids", prompt_ids, "the prompt as comma-separated token ids");
  text->excludes(ids);
  app.add_option("--max-tokens", max_tokens, "tokens to generate at most")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--dtype", dtype, "f32 | bf16 | int8")->capture_default_str();
  app.add_option("--pattern", pattern, "auto | dense | 4x1 | 16x1 | 2:4 | RxC")
      ->capture_default_str();
  app.add_option("--sparsity", sparsity, "prune the projections to this fraction first")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  app.add_option("--temperature", sampling.temperature, "0: greedy")->capture_default_str();
  app.add_option("--top-k", sampling.top_k, "0: no limit")->capture_default_str();
  app.add_option("--top-p", sampling.top_p, "1: no limit")->capture_default_str();
  app.add_option("--seed", sampling.seed, "random seed")->capture_default_str();
  std::string thresholds_path;
  app.add_option("--input-thresholds", thresholds_path,
                 "activation sparsity: the thresholds file sparq-eval --calibrate wrote (decode "
                 "steps zero the projection inputs below them)");
  bool print_ids = false;
  app.add_flag("--print-ids", print_ids,
               "print the generated token ids (comma-separated) instead of the text");
  CLI11_PARSE(app, argc, argv);

  try {
    if (prompt.empty() && prompt_ids.empty())
      throw sparq::InvalidArgument("give --prompt (GGUF models) or --prompt-ids");
    const sparq::Pattern parsed_pattern = sparq::Pattern::parse(pattern);
    const auto t_load = Clock::now();
    // The tokenizer only where text goes in or out.
    std::optional<sparq::models::Tokenizer> tokenizer;
    if (!prompt.empty() || !print_ids) {
      if (std::filesystem::is_regular_file(model_path))
        tokenizer.emplace(sparq::models::Tokenizer::from_gguf_file(model_path));
      else if (std::filesystem::exists(std::filesystem::path(model_path) / "tokenizer.json"))
        tokenizer.emplace(sparq::models::Tokenizer::from_folder(model_path));
      else if (!prompt.empty())
        throw sparq::InvalidArgument("--prompt needs a tokenizer: " + model_path +
                                     " has no tokenizer.json; give the prompt as --prompt-ids");
    }
    sparq::models::DecoderOptions options{sparq::parse_dtype(dtype), parsed_pattern, threads};
    if (!thresholds_path.empty()) {
      sparq::models::use_input_thresholds(
          options, sparq::models::load_input_thresholds(thresholds_path, -1));
    }
    // Read, pruned and packed a layer at a time.
    const auto model =
        sparq::models::LlamaModel::load(model_path, options, parsed_pattern, sparsity);
    const LlamaConfig& config = model.config();
    const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    const std::vector<int32_t> input =
        prompt_ids.empty() ? tokenizer->encode(prompt) : parse_ids(prompt_ids);
    if (input.empty()) throw sparq::InvalidArgument("the prompt has no tokens");
    auto session = model.start(
        std::min<int64_t>(config.max_position, static_cast<int64_t>(input.size()) + max_tokens));
    sparq::models::Sampler sampler(sampling);
    std::fprintf(stderr, "sparq-generate: %s, %s, kernels:", model_path.c_str(), dtype.c_str());
    for (const auto& [kind, info] : model.kernels())
      std::fprintf(stderr, " %s=%s", kind.c_str(), info.kernel.c_str());
    std::fprintf(stderr,
                 "; loaded in %.2f s, peak resident memory %.0f MiB (the packed model: %.0f "
                 "MiB)\n",
                 load_s, sparq::bench::peak_resident_mib(),
                 static_cast<double>(model.packed_bytes()) / (1 << 20));
    const bool print_text = tokenizer && !print_ids;
    if (print_text) std::cout << prompt << std::flush;

    const auto t0 = Clock::now();
    std::vector<float> logits = session.forward(input);
    const double prompt_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::vector<int32_t> generated;
    std::string shown;
    const auto t1 = Clock::now();
    while (static_cast<int>(generated.size()) < max_tokens) {
      const int32_t next = sampler.next(logits);
      generated.push_back(next);
      if (print_text) {
        // Decode everything so far and print what is new: a character may span tokens.
        const std::string all = tokenizer->decode(generated);
        if (all.size() > shown.size() && all.compare(0, shown.size(), shown) == 0) {
          std::cout << all.substr(shown.size()) << std::flush;
          shown = all;
        }
      } else {
        std::cout << (generated.size() > 1 ? "," : "") << next << std::flush;
      }
      if (tokenizer && tokenizer->ends_generation(next)) break;
      if (session.position() >= session.capacity()) break;
      logits = session.forward({next});
    }
    const double gen_s = std::chrono::duration<double>(Clock::now() - t1).count();
    std::cout << "\n";
    std::fprintf(stderr,
                 "prompt: %zu tokens, %.1f tokens/s; generation: %zu tokens, %.1f tokens/s\n",
                 input.size(), static_cast<double>(input.size()) / prompt_s, generated.size(),
                 static_cast<double>(generated.size()) / gen_s);
  } catch (const std::exception& e) {
    std::cerr << "sparq-generate: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
