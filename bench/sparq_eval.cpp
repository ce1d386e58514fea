// sparq-eval: model-level latency of a BERT-family encoder on sparq, optionally beside the dense
// model of the same dtype in the same process (runs interleaved, so machine noise hits both).
//
//   sparq-eval --synthetic bert-base --sparsity 0.9 --pattern 4x1 --dtype int8 --batch 1
//              --seq 128 --threads 2 --iters 200 --warmup 20 --compare dense [--format json]
//   sparq-eval --model DIR ...   (a Hugging Face folder; --sparsity > 0 prunes it on load)
//   sparq-eval --synthetic llama-1b --sparsity 0.7 --pattern 4x1 --dtype int8 --threads 2
//              --prompt-tokens 512 --gen-tokens 128 --iters 3 --compare dense   (decoders: pp, tg;
//              also --model FILE.gguf or a Llama folder)
//   --save DIR writes the pruned model as a Hugging Face folder (for bench/peers).
//   --device cuda[:N] runs encoders' whole forward pass on a GPU (dtype f16, bf16 or int8).
// --compare dense runs the unpruned model: the speedup is the pruned model's over the original.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bench/encoder_quality.hpp"
#include "bench/instances.hpp"
#include "bench/llama_eval.hpp"
#include "bench/llama_quality.hpp"
#include "bench/median.hpp"
#include "bench/passive_omp.hpp"
#include "bench/peak_memory.hpp"
#include "bench/synthetic_models.hpp"
#include "models/bert_save.hpp"
#include "models/decoder_architecture.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/wordpiece.hpp"
#include "sparq/sparq.hpp"
#include "sparse/prune.hpp"
#include "src/gguf.hpp"
#include "src/safetensors.hpp"
#include "src/threading.hpp"

namespace {

using sparq::models::BertConfig;
using sparq::models::BertEncoder;
using sparq::models::BertWeights;

// A decoder: a synthetic llama-*, a GGUF file, or a folder whose config.json names a decoder
// architecture sparq runs (llama, mistral, qwen2).
bool is_decoder(const std::string& synthetic, const std::string& model_dir) {
  if (!synthetic.empty()) return sparq::bench::is_synthetic_llama(synthetic);
  if (std::filesystem::is_regular_file(model_dir)) return true;
  const auto config = std::filesystem::path(model_dir) / "config.json";
  if (!std::filesystem::exists(config)) return false;
  try {
    const auto j = nlohmann::json::parse(std::ifstream(config));
    return sparq::models::find_decoder_architecture(j.value("model_type", "")) != nullptr;
  } catch (const nlohmann::json::exception&) {
    return false;  // BertConfig reports what is wrong with it
  }
}

void prune_linears(BertWeights& w, const sparq::Pattern& pattern, double sparsity) {
  if (pattern.kind == sparq::Pattern::Kind::dense || sparsity <= 0.0) return;
  for (auto& l : w.layers)
    for (auto* lin : {&l.query, &l.key, &l.value, &l.attention_out, &l.intermediate, &l.output})
      lin->weight = sparq::sparse::prune(lin->weight, lin->out, lin->in, pattern, sparsity);
}

class Progress {
 public:
  explicit Progress(int total) : total_(total), on_(isatty(STDERR_FILENO) != 0) {}
  void step(int done) const {
    if (!on_) return;
    const int width = 30, filled = total_ ? width * done / total_ : width;
    std::fprintf(stderr, "\r[%s%s] %d/%d", std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), ' ').c_str(), done, total_);
    if (done == total_) std::fprintf(stderr, "\r%*s\r", width + 20, "");
  }

 private:
  int total_;
  bool on_;
};

struct InstancesMode {
  int instances, threads_per_instance;
  std::string model;  // separate | shared | both
  int requests;
  double latency_bound;
  bool json;
  std::string name, dtype, pattern;
  double sparsity;
};

// sparq-eval --instances / --latency-bound: the stream at one (N, K) or the search over them.
int run_instances_mode(const InstancesMode& m, const sparq::bench::EncoderFactory& factory,
                       const sparq::models::EncoderInput& input) {
  using sparq::bench::InstancesResult;
  using sparq::bench::InstancesSpec;
  const int cores = static_cast<int>(sparq::allowed_cpus().size());
  std::vector<std::pair<int, int>> points;
  if (m.latency_bound > 0)
    points = sparq::bench::search_points(cores);
  else
    points = {{std::max(1, m.instances), std::max(1, m.threads_per_instance)}};
  std::vector<bool> models;
  if (m.model != "shared") models.push_back(false);
  if (m.model != "separate") models.push_back(true);
  if (!m.json) {
    char bound[64] = "";
    if (m.latency_bound > 0)
      std::snprintf(bound, sizeof(bound), ", latency bound %.2f ms on p90", m.latency_bound);
    std::printf(
        "sparq-eval: %s, %s, pattern %s at %.0f%% sparsity, batch %lld x seq %lld; %d requests "
        "per point over N instances x K threads (%d cores here)%s\n",
        m.name.c_str(), m.dtype.c_str(), m.pattern.c_str(), 100 * m.sparsity,
        static_cast<long long>(input.batch), static_cast<long long>(input.seq), m.requests, cores,
        bound);
    sparq::bench::print_instances_header();
  }
  std::optional<InstancesResult> best;
  for (const auto& [n, k] : points)
    for (bool shared : models) {
      if (shared && n == 1 && models.size() > 1) continue;  // one instance: the same either way
      InstancesSpec spec;
      spec.instances = n;
      spec.threads_per_instance = k;
      spec.shared = shared;
      spec.requests = m.requests;
      const InstancesResult r = sparq::bench::run_instances(factory, input, spec);
      if (m.json)
        std::cout << sparq::bench::instances_json(r, m.latency_bound) << std::endl;
      else
        sparq::bench::print_instances_row(r, m.latency_bound);
      if (m.latency_bound > 0 && r.p90_ms <= m.latency_bound &&
          (!best || r.throughput > best->throughput))
        best = r;
    }
  if (m.latency_bound > 0 && !m.json) {
    if (best)
      std::printf("  best within %.2f ms (p90): %d instances x %d threads, %s models: %.1f seq/s\n",
                  m.latency_bound, best->spec.instances, best->spec.threads_per_instance,
                  best->spec.shared ? "shared" : "separate", best->throughput);
    else
      std::printf("  no point kept p90 within %.2f ms\n", m.latency_bound);
  }
  return 0;
}

// Decoders' quality: --calibrate (thresholds written to --input-thresholds or beside the model)
// and --perplexity (with --input-thresholds applied where given).
struct QualityArgs {
  std::string model_dir, synthetic;
  sparq::DType dtype = sparq::DType::f32;
  sparq::Pattern pattern;
  double sparsity = 0;
  int threads = 0;
  uint32_t seed = 1;
  std::vector<std::string> perplexity_files, calibrate_files;
  std::string thresholds_path;
  double act_sparsity = 0;
  int64_t ctx = 512, chunks = 0;
  bool decode_steps = false, json = false;
};

int decoder_quality(const QualityArgs& q) {
  namespace models = sparq::models;
  const bool calibrating = !q.calibrate_files.empty();
  models::DecoderOptions options{q.dtype, q.pattern, q.threads};
  std::optional<models::InputThresholdsFile> thresholds;
  if (!calibrating && !q.thresholds_path.empty()) {
    thresholds = models::load_input_thresholds(q.thresholds_path, -1);
    models::use_input_thresholds(options, *thresholds);
  }
  std::optional<models::LlamaModel> model;
  std::optional<models::Tokenizer> tokenizer;
  const auto t_load = std::chrono::steady_clock::now();
  if (!q.synthetic.empty()) {
    const auto config = sparq::bench::synthetic_llama_config(q.synthetic);
    auto weights =
        sparq::bench::synthetic_llama_weights(config, sparq::Pattern::dense(), 0.0, q.seed);
    models::prune_projections(weights, q.pattern, q.sparsity);
    model.emplace(models::LlamaModel::build(config, weights, options));
  } else {
    model.emplace(models::LlamaModel::load(q.model_dir, options, q.pattern, q.sparsity));
    tokenizer.emplace(std::filesystem::is_regular_file(q.model_dir)
                          ? models::Tokenizer::from_gguf_file(q.model_dir)
                          : models::Tokenizer::from_folder(q.model_dir));
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  // Text as token ids; "random" (the synthetic models have no tokenizer): seeded random ids.
  auto tokens_of = [&](const std::vector<std::string>& files, int64_t count) {
    if (files.size() == 1 && files[0] == "random") {
      std::mt19937 rng(q.seed + 5);
      std::uniform_int_distribution<int32_t> id(
          0, static_cast<int32_t>(model->config().vocab_size) - 1);
      std::vector<int32_t> ids(static_cast<size_t>(count));
      for (auto& v : ids) v = id(rng);
      return ids;
    }
    if (!tokenizer)
      throw sparq::InvalidArgument("a synthetic model has no tokenizer: use 'random' as the text");
    return sparq::bench::text_tokens(files, *tokenizer);
  };
  const std::string what = q.synthetic.empty() ? q.model_dir : q.synthetic + " (synthetic)";
  nlohmann::json j = {{"model", what},
                      {"dtype", sparq::to_string(q.dtype)},
                      {"pattern", q.pattern.to_string()},
                      {"sparsity", q.sparsity},
                      {"ctx", q.ctx},
                      {"load_s", load_s}};
  if (calibrating) {
    const int64_t chunks = q.chunks > 0 ? q.chunks : 8;
    const auto tokens = tokens_of(q.calibrate_files, (chunks + 2) * q.ctx);
    auto r =
        sparq::models::calibrate_input_thresholds(*model, tokens, q.ctx, chunks, 2, q.act_sparsity);
    std::string joined;
    for (const auto& f : q.calibrate_files) joined += (joined.empty() ? "" : ",") + f;
    r.thresholds.calibration_text = joined;
    const std::string path = !q.thresholds_path.empty() ? q.thresholds_path
                             : q.synthetic.empty()
                                 ? models::default_input_thresholds_path(q.model_dir)
                                 : q.synthetic + ".sparq_input_thresholds.json";
    models::save_input_thresholds(path, r.thresholds);
    j["calibrated"] = {{"path", path},
                       {"target_sparsity", q.act_sparsity},
                       {"calibration_tokens", r.thresholds.calibration_tokens},
                       {"held_out_sparsity", r.held_out_sparsity}};
    if (!q.json) {
      std::printf(
          "sparq-eval: %s: input thresholds for %.0f%% activation sparsity from %lld "
          "tokens of %s, written to %s\n",
          what.c_str(), 100 * q.act_sparsity,
          static_cast<long long>(r.thresholds.calibration_tokens), joined.c_str(), path.c_str());
      if (!r.held_out_sparsity.empty())
        std::printf(
            "  held-out text (%lld tokens), fraction below threshold: qkv %.3f, o %.3f, "
            "gate_up %.3f, down %.3f\n",
            static_cast<long long>(2 * q.ctx), r.held_out_sparsity[0], r.held_out_sparsity[1],
            r.held_out_sparsity[2], r.held_out_sparsity[3]);
    }
  }
  if (!q.perplexity_files.empty()) {
    const auto tokens = tokens_of(q.perplexity_files, (q.chunks > 0 ? q.chunks : 8) * q.ctx);
    // Input thresholds act in decode steps only: a thresholded model is scored one token at a
    // time.
    const bool steps = q.decode_steps || thresholds.has_value();
    const auto r = sparq::bench::perplexity(*model, tokens, q.ctx, q.chunks, steps);
    j["perplexity"] = {{"value", r.perplexity},
                       {"chunks", r.chunks},
                       {"scored_tokens", r.scored_tokens},
                       {"text_tokens", tokens.size()},
                       {"decode_steps", r.decode_steps},
                       {"tokens_per_s", double(r.chunks * q.ctx) / r.seconds},
                       {"input_thresholds", thresholds ? q.thresholds_path : ""}};
    if (!q.json)
      std::printf(
          "sparq-eval: %s, %s, pattern %s at %.0f%%%s: perplexity %.4f over %lld chunks "
          "of %lld (second halves scored, %lld tokens; text %zu tokens), %s at %.1f "
          "tokens/s\n",
          what.c_str(), sparq::to_string(q.dtype), q.pattern.to_string().c_str(), 100 * q.sparsity,
          thresholds ? (", input thresholds " + q.thresholds_path).c_str() : "", r.perplexity,
          static_cast<long long>(r.chunks), static_cast<long long>(q.ctx),
          static_cast<long long>(r.scored_tokens), tokens.size(),
          r.decode_steps ? "one token per call" : "one call per chunk",
          double(r.chunks * q.ctx) / r.seconds);
  }
  if (q.json) std::cout << j.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sparq::bench::restart_with_passive_openmp(argv);
  CLI::App app{"sparq-eval: latency of a BERT-family encoder on sparq"};
  std::string model_dir, synthetic, dtype = "int8", pattern = "4x1", compare, format = "table";
  std::string device = "cpu", attention = "auto";
  double sparsity = 0.9;
  int64_t batch = 1, seq = 128;
  int threads = 0, iters = 200, warmup = 20;
  uint32_t seed = 1;
  auto* source = app.add_option_group("model");
  source->add_option("--model", model_dir, "a Hugging Face folder (config.json + safetensors)");
  source->add_option("--synthetic", synthetic,
                     "bert-mini | distilbert | bert-base | bert-large | llama-tiny | llama-1b | "
                     "llama-7b");
  source->require_option(1);
  app.add_option("--sparsity", sparsity, "pruned fraction of every encoder linear layer")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--pattern", pattern, "4x1 | 16x1 | 2:4 | RxC | auto | dense")
      ->capture_default_str();
  app.add_option("--dtype", dtype, "int8 | f32 | bf16 | f16 (cuda only)")->capture_default_str();
  app.add_option("--device", device,
                 "cpu | cuda | cuda:N: where encoders run (the whole forward pass; --compare "
                 "dense runs there too); decoders run on the CPU only")
      ->capture_default_str();
  app.add_option(
         "--attention", attention,
         "encoders on the CPU: the attention products' precision: auto (bf16 for int8 and "
         "bf16 models where the CPU has AVX512_BF16, except on Intel CPUs without AMX) | f32 | "
         "bf16")
      ->check(CLI::IsMember({"auto", "f32", "bf16"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "sequences per call")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--seq", seq, "tokens per sequence")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  app.add_option("--iters", iters, "timed runs")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "untimed runs first")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--compare", compare, "dense: also run the dense model, interleaved")
      ->check(CLI::IsMember({"dense"}));
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  int prompt_tokens = 512, gen_tokens = 128;
  app.add_option("--prompt-tokens", prompt_tokens, "decoders: prompt length (pp)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--gen-tokens", gen_tokens, "decoders: tokens generated (tg)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  int instances = 0, threads_per_instance = 0, requests = 200;
  double latency_bound = 0;
  std::string instance_model = "both";
  app.add_option("--instances", instances,
                 "encoders: serve a stream of --requests with N instances at once, each on its "
                 "own thread pool and, when they fit, its own cores (throughput and per-request "
                 "latency)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--threads-per-instance", threads_per_instance,
                 "threads of each instance (default 1)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--instance-model", instance_model,
                 "separate (one model object per instance) | shared (one for all) | both")
      ->check(CLI::IsMember({"separate", "shared", "both"}))
      ->capture_default_str();
  app.add_option("--requests", requests, "requests in the stream (--instances, --latency-bound)")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--latency-bound", latency_bound,
                 "encoders: run every instances x threads-per-instance with product <= cores "
                 "(powers of two), print each, and pick the highest throughput whose p90 "
                 "latency is within MS")
      ->check(CLI::Range(0.001, 1e9));
  std::string text, save_dir;
  bool profile = false;
  app.add_flag("--profile", profile,
               "print where the (pruned) model's time goes: embeddings, each linear layer kind, "
               "attention, LayerNorm (medians over the timed runs)");
  app.add_option("--save", save_dir,
                 "also write the (pruned) model as a Hugging Face folder, fp32 safetensors, for "
                 "other runtimes (bench/peers)");
  app.add_option("--text", text,
                 "with --model: time this text (WordPiece with the folder's vocab.txt) instead of "
                 "random ids; --seq becomes its token count");
  app.add_option("--format", format, "table | json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  QualityArgs quality;
  app.add_option("--perplexity", quality.perplexity_files,
                 "decoders: perplexity over these text files (joined; 'random' for synthetic "
                 "models), llama.cpp's convention: chunks of --ctx, second halves scored")
      ->delimiter(',');
  app.add_option("--calibrate", quality.calibrate_files,
                 "decoders: find the input thresholds that zero --act-sparsity of every "
                 "projection input on these texts ('random' for synthetic models) and write them "
                 "to --input-thresholds (default: beside the model)")
      ->delimiter(',');
  app.add_option("--act-sparsity", quality.act_sparsity,
                 "with --calibrate: the fraction of each projection input to zero, 0..1");
  app.add_option("--input-thresholds", quality.thresholds_path,
                 "decoders: the thresholds file to apply (pp/tg and --perplexity), or with "
                 "--calibrate the file to write");
  app.add_option("--ctx", quality.ctx, "--perplexity / --calibrate: tokens per chunk")
      ->capture_default_str();
  app.add_option("--chunks", quality.chunks,
                 "--perplexity: at most this many chunks (0: all); --calibrate: chunks to "
                 "calibrate on (default 8; the next 2 are held out)");
  std::vector<std::string> cosine_files;
  size_t cosine_sentences = 256;
  app.add_option(
         "--cosine", cosine_files,
         "encoders (--model): the mean cosine between the (pruned) model's and the "
         "original fp32 model's mean-pooled sentence embeddings over these texts' sentences")
      ->delimiter(',');
  app.add_option("--sentences", cosine_sentences, "--cosine: at most this many sentences")
      ->capture_default_str();
  app.add_flag("--decode-steps", quality.decode_steps,
               "--perplexity: feed one token per call (always so with --input-thresholds)");
  CLI11_PARSE(app, argc, argv);

  const bool instances_mode = instances > 0 || threads_per_instance > 0 || latency_bound > 0;
  try {
    const sparq::DType parsed_dtype = sparq::parse_dtype(dtype);
    if (instances_mode && is_decoder(synthetic, model_dir))
      throw sparq::InvalidArgument(
          "--instances, --threads-per-instance and --latency-bound are for encoders");
    const sparq::Pattern parsed_pattern = sparq::Pattern::parse(pattern);
    const sparq::Device parsed_device = sparq::Device::parse(device);
    if (is_decoder(synthetic, model_dir) &&
        (!quality.perplexity_files.empty() || !quality.calibrate_files.empty())) {
      quality.model_dir = model_dir;
      quality.synthetic = synthetic;
      quality.dtype = parsed_dtype;
      quality.pattern = parsed_pattern;
      quality.sparsity = sparsity;
      quality.threads = threads;
      quality.seed = seed;
      quality.json = format == "json";
      return decoder_quality(quality);
    }
    if (is_decoder(synthetic, model_dir)) {
      if (parsed_device.kind != sparq::Device::Kind::cpu) {
        std::cerr << "sparq-eval: --device " << device
                  << ": decoders run on the CPU only (use --device cpu)\n";
        return 2;
      }
      sparq::bench::LlamaEvalSpec spec;
      spec.dtype = parsed_dtype;
      spec.pattern = parsed_pattern;
      spec.sparsity = sparsity;
      spec.threads = threads;
      spec.prompt_tokens = prompt_tokens;
      spec.gen_tokens = gen_tokens;
      spec.iters = iters;
      spec.warmup = warmup;
      spec.compare_dense = compare == "dense";
      spec.seed = seed;
      spec.save_dir = save_dir;
      if (!quality.thresholds_path.empty())
        spec.input_thresholds = sparq::models::load_input_thresholds(quality.thresholds_path, -1);
      sparq::models::LlamaConfig config;
      sparq::models::LlamaWeights weights;
      const auto t_load = std::chrono::steady_clock::now();
      nlohmann::json j;
      if (synthetic.empty() && !spec.compare_dense && save_dir.empty()) {
        // A file or folder, nothing else to build from its weights: read, pruned and packed a
        // layer at a time (the peak resident memory a user's load has).
        spec.name = model_dir;
        sparq::models::DecoderOptions options{spec.dtype, spec.pattern, spec.threads};
        sparq::models::use_input_thresholds(options, spec.input_thresholds);
        const auto model =
            sparq::models::LlamaModel::load(model_dir, options, spec.pattern, spec.sparsity);
        const double load_s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
        j = sparq::bench::run_llama_eval(spec, model, load_s, sparq::bench::peak_resident_mib());
      } else if (!synthetic.empty()) {
        spec.name = synthetic + " (synthetic)";
        config = sparq::bench::synthetic_llama_config(synthetic);
        std::fprintf(stderr, "sparq-eval: making %s's random weights\n", synthetic.c_str());
        weights = sparq::bench::synthetic_llama_weights(config, sparq::Pattern::dense(), 0.0, seed);
      } else if (std::filesystem::is_regular_file(model_dir)) {
        spec.name = model_dir;
        const auto file = sparq::GgufFile::open(model_dir);
        config = sparq::models::llama_config_from_gguf(file);
        weights = sparq::models::load_llama_weights(file, config);
      } else {
        spec.name = model_dir;
        config = sparq::models::LlamaConfig::from_file(
            (std::filesystem::path(model_dir) / "config.json").string());
        weights =
            sparq::models::load_llama_weights(sparq::SafetensorsModel::open(model_dir), config);
      }
      if (j.is_null()) {
        spec.read_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
        j = sparq::bench::run_llama_eval(spec, config, std::move(weights));
      }
      if (format == "json") {
        std::cout << j.dump() << std::endl;
        return 0;
      }
      std::printf("sparq-eval: %s, %s, pattern %s at %.0f%% sparsity, threads %d, %d runs\n",
                  spec.name.c_str(), dtype.c_str(), pattern.c_str(), 100 * sparsity,
                  j["threads"].get<int>(), iters);
      std::printf("  kernels on %s; CPU features: %s\n", sparq::cpu_isa_name(),
                  sparq::cpu_features_name());
      if (spec.read_seconds > 0)
        std::printf(
            "  loaded in %.2f s (read %.2f s, packed %.2f s), peak resident memory %.0f MiB "
            "(the packed model: %.0f MiB)\n",
            j["load_s"].get<double>(), spec.read_seconds, j["pack_s"].get<double>(),
            j["peak_resident_mib"].get<double>(), j["packed_mib"].get<double>());
      else
        std::printf(
            "  loaded in %.2f s (read, pruned and packed layer by layer), peak resident "
            "memory %.0f MiB (the packed model: %.0f MiB)\n",
            j["load_s"].get<double>(), j["peak_resident_mib"].get<double>(),
            j["packed_mib"].get<double>());
      std::printf("  sparse: pp%d %.1f tokens/s  tg%d %.2f tokens/s\n", prompt_tokens,
                  j["pp_tokens_per_s"].get<double>(), gen_tokens,
                  j["tg_tokens_per_s"].get<double>());
      if (j.contains("dense_pp_tokens_per_s"))
        std::printf("  dense:  pp%d %.1f tokens/s  tg%d %.2f tokens/s -> pp %.2fx, tg %.2fx\n",
                    prompt_tokens, j["dense_pp_tokens_per_s"].get<double>(), gen_tokens,
                    j["dense_tg_tokens_per_s"].get<double>(), j["pp_speedup"].get<double>(),
                    j["tg_speedup"].get<double>());
      for (const auto& [kind, kernel] : j["kernels"].items())
        std::printf("  %-17s %s\n", kind.c_str(), kernel.get<std::string>().c_str());
      return 0;
    }
    // The dense model is the unpruned one: the question is how much faster the pruned model runs.
    BertConfig config;
    BertWeights dense_weights;
    std::string name;
    if (!synthetic.empty()) {
      config = sparq::bench::synthetic_config(synthetic);
      dense_weights = sparq::bench::synthetic_weights(config, sparq::Pattern::dense(), 0.0, seed);
      name = synthetic + " (synthetic)";
    } else {
      config = BertConfig::from_file((std::filesystem::path(model_dir) / "config.json").string());
      dense_weights =
          sparq::models::load_bert_weights(sparq::SafetensorsModel::open(model_dir), config);
      name = model_dir;
    }
    BertWeights weights = dense_weights;
    prune_linears(weights, parsed_pattern, sparsity);
    if (!save_dir.empty()) sparq::models::save_bert_folder(save_dir, config, weights);
    if (!cosine_files.empty()) {
      if (model_dir.empty())
        throw sparq::InvalidArgument("--cosine needs --model (a folder with its vocab.txt)");
      const auto tokenizer = sparq::models::WordPieceTokenizer::from_folder(model_dir);
      const auto sentences = sparq::bench::text_sentences(cosine_files, cosine_sentences);
      sparq::models::EncoderOptions o{parsed_dtype, parsed_pattern, threads};
      const auto reference = BertEncoder::build(
          config, dense_weights, {sparq::DType::f32, sparq::Pattern::dense(), threads});
      const auto same_dtype = BertEncoder::build(config, dense_weights,
                                                 {parsed_dtype, sparq::Pattern::dense(), threads});
      const auto pruned = BertEncoder::build(config, weights, o);
      const auto r = sparq::bench::embedding_cosine(reference, pruned, tokenizer, sentences,
                                                    config.max_position);
      const auto q = sparq::bench::embedding_cosine(reference, same_dtype, tokenizer, sentences,
                                                    config.max_position);
      const nlohmann::json j = {{"model", name},
                                {"dtype", dtype},
                                {"pattern", pattern},
                                {"sparsity", sparsity},
                                {"sentences", r.sentences},
                                {"cosine_mean", r.mean},
                                {"cosine_min", r.min},
                                {"unpruned_cosine_mean", q.mean},
                                {"unpruned_cosine_min", q.min}};
      if (format == "json") {
        std::cout << j.dump() << std::endl;
      } else {
        std::printf(
            "sparq-eval: %s, %s, pattern %s at %.0f%%: sentence embeddings (mean pooling) "
            "against the original fp32 model over %lld sentences: cosine mean %.5f, min "
            "%.5f (the unpruned model in %s: mean %.5f, min %.5f)\n",
            name.c_str(), dtype.c_str(), pattern.c_str(), 100 * sparsity,
            static_cast<long long>(r.sentences), r.mean, r.min, dtype.c_str(), q.mean, q.min);
      }
      return 0;
    }
    std::vector<int32_t> text_ids;
    if (!text.empty()) {
      if (model_dir.empty()) throw sparq::InvalidArgument("--text needs --model (its vocab.txt)");
      text_ids = sparq::models::WordPieceTokenizer::from_folder(model_dir).encode(
          text, config.max_position);
      seq = static_cast<int64_t>(text_ids.size());
    }
    if (seq > config.max_position)
      throw sparq::InvalidArgument("--seq " + std::to_string(seq) + " exceeds the model's " +
                                   std::to_string(config.max_position) + " positions");
    using sparq::models::AttentionPrecision;
    const AttentionPrecision parsed_attention = attention == "f32" ? AttentionPrecision::f32
                                                : attention == "bf16"
                                                    ? AttentionPrecision::bf16
                                                    : AttentionPrecision::automatic;
    sparq::models::EncoderOptions options{parsed_dtype, parsed_pattern, threads, parsed_device,
                                          parsed_attention};

    sparq::models::EncoderInput input;
    input.batch = batch;
    input.seq = seq;
    input.lengths.assign(static_cast<size_t>(batch), seq);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(config.vocab_size - 1));
    for (int64_t i = 0; i < batch * seq; ++i)
      input.ids.push_back(text_ids.empty() ? id(rng) : text_ids[static_cast<size_t>(i % seq)]);

    if (instances_mode) {
      if (parsed_device.kind != sparq::Device::Kind::cpu)
        throw sparq::InvalidArgument("--instances and --latency-bound run on the CPU only");
      const sparq::bench::EncoderFactory factory = [&](int k, int pool) {
        sparq::models::EncoderOptions o = options;
        o.threads = k;
        o.pool = pool;
        return BertEncoder::build(config, weights, o);
      };
      InstancesMode mode{instances,      threads_per_instance,
                         instance_model, requests,
                         latency_bound,  format == "json",
                         name,           dtype,
                         pattern,        sparsity};
      return run_instances_mode(mode, factory, input);
    }
    const BertEncoder sparse = BertEncoder::build(config, weights, options);
    std::optional<BertEncoder> dense;
    if (compare == "dense") {
      // The same attention as the sparse model: the comparison is of the linear layers.
      options.pattern = sparq::Pattern::dense();
      dense.emplace(BertEncoder::build(config, dense_weights, options));
    }
    dense_weights = {};

    using Clock = std::chrono::steady_clock;
    std::vector<sparq::models::ForwardProfile> profiles, dense_profiles;
    auto time_ms = [&](const BertEncoder& e) {
      sparq::models::ForwardProfile stages;
      const auto t0 = Clock::now();
      (void)e.forward(input, profile ? &stages : nullptr);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (profile) (&e == &sparse ? profiles : dense_profiles).push_back(stages);
      return ms;
    };
    for (int i = 0; i < warmup; ++i) {
      time_ms(sparse);
      if (dense) time_ms(*dense);
    }
    profiles.clear();
    dense_profiles.clear();
    std::vector<double> sparse_ms, dense_ms;
    const Progress progress(iters);
    for (int i = 0; i < iters; ++i) {
      // Alternate which runs first, so that neither always finds the caches the other left.
      if (dense && i % 2) dense_ms.push_back(time_ms(*dense));
      sparse_ms.push_back(time_ms(sparse));
      if (dense && i % 2 == 0) dense_ms.push_back(time_ms(*dense));
      progress.step(i + 1);
    }
    const double p50 = sparq::bench::percentile(sparse_ms, 0.5);
    nlohmann::json j = {{"model", name},
                        {"dtype", dtype},
                        {"device", parsed_device.to_string()},
                        {"pattern", pattern},
                        {"sparsity", sparsity},
                        {"batch", batch},
                        {"seq", seq},
                        {"threads", sparse.kernels().front().second.threads},
                        {"isa", sparq::cpu_isa_name()},
                        {"cpu_features", sparq::cpu_features_name()},
                        {"iters", iters},
                        {"p50_ms", p50},
                        {"p90_ms", sparq::bench::percentile(sparse_ms, 0.9)},
                        {"p99_ms", sparq::bench::percentile(sparse_ms, 0.99)},
                        {"throughput", static_cast<double>(batch) / (p50 / 1e3)}};
    nlohmann::json kernels = nlohmann::json::object();
    for (const auto& [kind, info] : sparse.kernels())
      kernels[kind] = info.kernel + (info.decode_kernel.empty() ? "" : " / " + info.decode_kernel);
    j["kernels"] = kernels;
    j["attention"] = sparse.attention_kernel();
    if (profile) {
      using P = sparq::models::ForwardProfile;
      const std::pair<const char*, double P::*> stages[] = {
          {"embeddings", &P::embeddings},     {"qkv", &P::qkv},
          {"attention", &P::attention},       {"attention_out", &P::attention_out},
          {"intermediate", &P::intermediate}, {"output", &P::output},
          {"layer_norm", &P::layer_norm}};
      // Medians per stage, and the median of the per-forward sums of the stages.
      const auto medians = [&](const std::vector<P>& runs) {
        nlohmann::json p = nlohmann::json::object();
        for (const auto& [key, field] : stages) {
          std::vector<double> v;
          for (const auto& s : runs) v.push_back(s.*field);
          p[key] = sparq::bench::percentile(v, 0.5);
        }
        std::vector<double> totals;
        for (const auto& s : runs) totals.push_back(s.total());
        p["stages_total"] = sparq::bench::percentile(totals, 0.5);
        return p;
      };
      j["profile_ms"] = medians(profiles);
      if (dense) j["dense_profile_ms"] = medians(dense_profiles);
    }
    if (dense) {
      const double d50 = sparq::bench::percentile(dense_ms, 0.5);
      j["dense_p50_ms"] = d50;
      j["dense_p90_ms"] = sparq::bench::percentile(dense_ms, 0.9);
      j["dense_p99_ms"] = sparq::bench::percentile(dense_ms, 0.99);
      j["dense_kernel"] = dense->kernels().front().second.kernel;
      j["speedup"] = d50 / p50;
    }
    if (format == "json") {
      std::cout << j.dump() << std::endl;
      return 0;
    }
    std::printf(
        "sparq-eval: %s, %s on %s, pattern %s at %.0f%% sparsity, batch %lld x seq %lld, "
        "threads %d, %d iterations\n",
        name.c_str(), dtype.c_str(), parsed_device.to_string().c_str(), pattern.c_str(),
        100 * sparsity, static_cast<long long>(batch), static_cast<long long>(seq),
        j["threads"].get<int>(), iters);
    std::printf("  kernels on %s; CPU features: %s\n", sparq::cpu_isa_name(),
                sparq::cpu_features_name());
    std::printf("  sparse: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  %.1f sequences/s\n", p50,
                j["p90_ms"].get<double>(), j["p99_ms"].get<double>(),
                j["throughput"].get<double>());
    if (dense)
      std::printf("  dense:  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  -> speedup %.2fx (p50)\n",
                  j["dense_p50_ms"].get<double>(), j["dense_p90_ms"].get<double>(),
                  j["dense_p99_ms"].get<double>(), j["speedup"].get<double>());
    for (const auto& [kind, info] : sparse.kernels())
      std::printf("  %-17s %s (%s)\n", kind.c_str(), info.kernel.c_str(), info.reason.c_str());
    std::printf("  %-17s %s\n", "attention", sparse.attention_kernel().c_str());
    if (profile) {
      std::printf("  where the time goes (median ms per call, summed over layers; %% of p50)%s:\n",
                  dense ? ", sparse then dense" : "");
      for (const auto& [key, ms] : j["profile_ms"].items()) {
        std::printf("    %-14s %7.2f  (%4.1f%%)", key.c_str(), ms.get<double>(),
                    100.0 * ms.get<double>() / p50);
        if (dense) {
          const double d = j["dense_profile_ms"][key].get<double>();
          std::printf("   dense %7.2f  (%4.1f%%)  -> %.2fx", d,
                      100.0 * d / j["dense_p50_ms"].get<double>(), d / ms.get<double>());
        }
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "sparq-eval: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
