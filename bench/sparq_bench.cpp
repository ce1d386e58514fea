// sparq-bench: sparse kernels against oneDNN's dense matmul, in one process, same shape, dtype and
// threads. Repetitions of the two alternate, so machine noise hits both alike; the speedup is
// the median of the per-pair ratios.
//
//   sparq-bench spmm --dtype int8 --pattern 4x1 --out 3072 --in 768 --tokens 128
//                    --sparsity 0.7,0.8,0.9 --threads 1 [--format json]
//   sparq-bench scaling --dtype int8 --pattern 4x1 --shapes 3072x768 --tokens 128 --sparsity 0.9
//                       --threads 2   (1 thread against 2, interleaved in one process)
//   sparq-bench spmm --device cuda --dtype f16 --pattern 2:4 --shapes 4096x4096 --tokens 4096
//                    (on a GPU: against cuBLASLt dense, timed with CUDA events)
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bandwidth.hpp"
#include "bench/passive_omp.hpp"
#include "bench/spmm_case.hpp"
#include "bench/spmm_cuda.hpp"
#include "bench/spmm_run.hpp"
#include "bench/sweep.hpp"
#include "jit/cpu_features.hpp"

namespace {

struct Shape {
  int64_t out, in;
};

}  // namespace

int main(int argc, char** argv) {
  sparq::bench::restart_with_passive_openmp(argv);
  CLI::App app{"sparq-bench: sparq's sparse kernels against oneDNN dense, same process"};
  app.require_subcommand(1);
  auto* spmm = app.add_subcommand("spmm", "sparse linear layer vs dense matmul");
  std::string dtype = "int8", pattern = "4x1", format = "table";
  std::vector<int64_t> outs{3072}, ins{768}, tokens{128};
  std::vector<std::string> shapes;
  std::vector<double> sparsities{0.9};
  std::vector<int> threads{1};
  int warmup = 20, min_reps = 50;
  double min_seconds = 1.0;
  uint32_t seed = 1;
  std::string device = "cpu";
  spmm->add_option("--dtype", dtype, "int8 | f32 | bf16 | f16 (cuda)")->capture_default_str();
  spmm->add_option("--device", device,
                   "cpu | cuda | cuda:N (cuda: against cuBLASLt dense; --threads ignored)")
      ->capture_default_str();
  spmm->add_option("--pattern", pattern, "4x1 | auto | dense | RxC | N:M")->capture_default_str();
  spmm->add_option("--out", outs, "output features (several: one case each)")->delimiter(',');
  spmm->add_option("--in", ins, "input features")->delimiter(',');
  spmm->add_option("--shapes", shapes,
                   "OUTxIN pairs, e.g. 3072x768,768x3072 (instead of --out/--in)")
      ->delimiter(',');
  spmm->add_option("--tokens", tokens, "tokens (rows of x)")->delimiter(',');
  spmm->add_option("--sparsity", sparsities, "fraction of pruned blocks, 0..1")->delimiter(',');
  spmm->add_option("--threads", threads, "threads (0: all cores)")->delimiter(',');
  spmm->add_option("--warmup", warmup, "warm-up runs of each side (at least one per weight copy)")
      ->capture_default_str();
  spmm->add_option("--min-reps", min_reps, "minimum timed pairs")->capture_default_str();
  spmm->add_option("--min-seconds", min_seconds, "minimum timing per case")->capture_default_str();
  spmm->add_option("--seed", seed, "random seed")->capture_default_str();
  bool cold_weights = false;
  spmm->add_flag("--cold-weights", cold_weights,
                 "rotate over weight copies totalling > 4x the last-level cache (decode-like); "
                 "also measures the copy bandwidth");
  std::vector<double> input_sparsities{-1};
  spmm->add_option("--input-sparsity", input_sparsities,
                   "activation sparsity (tokens <= 4): the fraction of input entries below the "
                   "layer's input_threshold, 0..1 (0: the sparse-input kernel on dense inputs; "
                   "default off)")
      ->delimiter(',');
  bool no_bias = false;
  spmm->add_flag("--no-bias", no_bias,
                 "--device cuda: layers without bias on both sides (the bare matmul that published "
                 "sparse-vs-dense figures measure)");
  spmm->add_option("--format", format, "table | json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();

  auto* scaling = app.add_subcommand(
      "scaling",
      "one thread against --threads N on the same layer, interleaved (sparq and oneDNN)");
  int scaling_threads = 2;
  scaling->add_option("--dtype", dtype, "int8 | f32 | bf16")->capture_default_str();
  scaling->add_option("--pattern", pattern, "4x1 | auto | dense | RxC | N:M")
      ->capture_default_str();
  scaling->add_option("--shapes", shapes, "OUTxIN pairs, e.g. 3072x768,768x3072")
      ->delimiter(',')
      ->required();
  scaling->add_option("--tokens", tokens, "tokens (rows of x)")->delimiter(',');
  scaling->add_option("--sparsity", sparsities, "fraction of pruned blocks, 0..1")->delimiter(',');
  scaling->add_option("--threads", scaling_threads, "the thread count compared with one")
      ->check(CLI::Range(2, 1024))
      ->capture_default_str();
  scaling->add_option("--warmup", warmup, "warm-up runs of each")->capture_default_str();
  scaling->add_option("--min-reps", min_reps, "minimum timed rounds")->capture_default_str();
  scaling->add_option("--min-seconds", min_seconds, "minimum timing per case")
      ->capture_default_str();
  scaling->add_flag("--cold-weights", cold_weights, "as for spmm");

  auto* sweep = app.add_subcommand(
      "sweep", "the grid dtype x pattern x sparsity x tokens: CSV and PNG charts (gnuplot)");
  sparq::bench::SweepOptions so;
  std::string sweep_shape = "3072x768";
  sweep->add_option("--dtypes", so.dtypes, "dtypes")->delimiter(',')->capture_default_str();
  sweep->add_option("--patterns", so.patterns, "patterns")->delimiter(',')->capture_default_str();
  sweep->add_option("--sparsities", so.sparsities, "sparsities (N:M patterns: their own)")
      ->delimiter(',')
      ->capture_default_str();
  sweep->add_option("--tokens", so.tokens, "token counts (<= 4: cold weights)")
      ->delimiter(',')
      ->capture_default_str();
  sweep->add_option("--shape", sweep_shape, "OUTxIN")->capture_default_str();
  sweep->add_option("--threads", so.threads, "threads")->capture_default_str();
  sweep->add_option("--min-seconds", so.min_seconds, "minimum timing per case")
      ->capture_default_str();
  sweep->add_option("--out-dir", so.out_dir, "where sweep.csv and the charts go")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (sweep->parsed()) {
    try {
      const auto x = sweep_shape.find('x');
      if (x == std::string::npos)
        throw sparq::InvalidArgument("--shape: expected OUTxIN, got " + sweep_shape);
      so.out = std::stoll(sweep_shape.substr(0, x));
      so.in = std::stoll(sweep_shape.substr(x + 1));
      for (const auto& d : so.dtypes) sparq::parse_dtype(d);
      for (const auto& p : so.patterns) sparq::Pattern::parse(p);
      return sparq::bench::run_sweep(so);
    } catch (const std::exception& e) {
      std::cerr << "sparq-bench sweep: " << e.what() << "\n";
      return 1;
    }
  }

  try {
    std::vector<Shape> shape_list;
    for (const auto& s : shapes) {
      const auto x = s.find('x');
      if (x == std::string::npos)
        throw sparq::InvalidArgument("--shapes: expected OUTxIN, got " + s);
      shape_list.push_back({std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))});
    }
    if (scaling->parsed()) {
      const sparq::DType parsed_dtype = sparq::parse_dtype(dtype);
      const sparq::Pattern parsed_pattern = sparq::Pattern::parse(pattern);
      std::printf(
          "sparq-bench scaling: 1 thread vs %d on the same layer (sparq %s) and oneDNN dense, "
          "interleaved; scaling = median of per-round t1 / t%d; sparq kernels: %s; CPU "
          "features: %s\n",
          scaling_threads, pattern.c_str(), scaling_threads, sparq::cpu_isa_name(),
          sparq::cpu_features_name());
      std::printf("%-5s %-7s %6s %6s %6s %8s %-6s %10s %10s %8s %10s %10s %8s %5s  %s\n", "dtype",
                  "pattern", "out", "in", "tokens", "sparsity", "calls", "sparse_1", "sparse_n",
                  "scaling", "dense_1", "dense_n", "scaling", "reps", "kernel");
      for (const Shape& shape : shape_list)
        for (auto t : tokens)
          for (double sp : sparsities) {
            sparq::bench::SpmmSpec spec{parsed_dtype, parsed_pattern,  shape.out, shape.in,    t,
                                        sp,           scaling_threads, seed,      cold_weights};
            const auto r = sparq::bench::run_scaling(spec, warmup, min_reps, min_seconds);
            for (int burst = 0; burst < 2; ++burst) {
              const auto& m = r.modes[burst];
              std::printf(
                  "%-5s %-7s %6lld %6lld %6lld %8.2f %-6s %10.1f %10.1f %7.2fx %10.1f %10.1f "
                  "%7.2fx %5d  %s\n",
                  dtype.c_str(), pattern.c_str(), (long long)shape.out, (long long)shape.in,
                  (long long)t, sp, burst ? "burst" : "single", m.sparse_1_us, m.sparse_n_us,
                  m.sparse_scaling, m.dense_1_us, m.dense_n_us, m.dense_scaling, r.reps,
                  r.kernel.c_str());
            }
            std::fflush(stdout);
          }
      return 0;
    }
    if (shapes.empty()) {
      for (auto o : outs)
        for (auto i : ins) shape_list.push_back({o, i});
    }
    // Reject a bad dtype or pattern before any output.
    const sparq::DType parsed_dtype = sparq::parse_dtype(dtype);
    const sparq::Pattern parsed_pattern = sparq::Pattern::parse(pattern);
    const bool table = format == "table";
    const sparq::Device parsed_device = sparq::Device::parse(device);
    if (parsed_device.kind == sparq::Device::Kind::cuda) {
      if (cold_weights) throw sparq::InvalidArgument("--cold-weights is for --device cpu");
      const sparq::CudaStatus st = sparq::cuda_status();
      if (!st.usable)
        throw sparq::NotSupported("--device " + parsed_device.to_string() + ": " + st.message);
      if (table) {
        std::printf("sparq-bench spmm on %s: %s%s\n", device.c_str(), st.message.c_str(),
                    no_bias ? " (layers without bias)" : "");
        // sp_TOPS / dn_TOPS: 2 x tokens x out x in per call, the dense count for both sides.
        std::printf("%-5s %-7s %6s %6s %6s %8s %10s %10s %8s %9s %9s %8s %8s  %s (dense: %s)\n",
                    "dtype", "pattern", "out", "in", "tokens", "sparsity", "sparse_us", "dense_us",
                    "speedup", "sp_err", "dense_err", "sp_TOPS", "dn_TOPS", "kernel", "kernel");
      }
      for (const Shape& shape : shape_list)
        for (auto t : tokens)
          for (double sp : sparsities) {
            sparq::bench::SpmmSpec spec{parsed_dtype, parsed_pattern, shape.out, shape.in, t, sp, 0,
                                        seed};
            spec.bias = !no_bias;
            const auto r =
                sparq::bench::run_cuda_case(spec, parsed_device, warmup, min_reps, min_seconds);
            if (table) {
              const auto j = sparq::bench::to_json(r);
              std::printf(
                  "%-5s %-7s %6lld %6lld %6lld %8.2f %10.1f %10.1f %7.2fx %9.2e %9.2e %8.1f %8.1f  "
                  "%s (dense: %s) on %s\n",
                  dtype.c_str(), pattern.c_str(), (long long)shape.out, (long long)shape.in,
                  (long long)t, sp, r.sparse_us, r.dense_us, r.speedup, r.sparse_error,
                  r.dense_error, j["sparse_tflops"].get<double>(), j["dense_tflops"].get<double>(),
                  r.kernel.c_str(), r.dense_kernel.c_str(), r.gpu.c_str());
              std::fflush(stdout);
            } else {
              std::cout << sparq::bench::to_json(r).dump() << std::endl;
            }
          }
      return 0;
    }
    if (no_bias) throw sparq::InvalidArgument("--no-bias is for --device cuda");
    const double copy_gbps = cold_weights ? sparq::bench::copy_bandwidth_gbps() : 0.0;
    if (table) {
      std::printf(
          "sparq-bench spmm: sparq %s vs oneDNN dense matmul (dense_us: u8 activations, "
          "oneDNN's fastest int8 path; dense_s8: s8 activations), same shape, threads; "
          "medians of interleaved runs; sparq kernels: %s; CPU features: %s\n",
          pattern.c_str(), sparq::cpu_isa_name(), sparq::cpu_features_name());
      if (cold_weights)
        std::printf(
            "cold weights: each side rotates over copies totalling > 4x the %lld MiB last-level "
            "cache; copy bandwidth %.1f GB/s (read + write)\n",
            static_cast<long long>(sparq::bench::last_level_cache_bytes() >> 20), copy_gbps);
      std::printf("%-5s %-7s %6s %6s %6s %8s %7s %10s %10s %10s %8s %8s %9s %9s %9s  %s\n", "dtype",
                  "pattern", "out", "in", "tokens", "sparsity", "threads", "sparse_us", "dense_us",
                  "dense_s8", "speedup", "vs_s8", "sp_GOPS", "sp_err", "dense_err", "kernel");
    }
    for (const Shape& shape : shape_list)
      for (auto t : tokens)
        for (int th : threads)
          for (double sp : sparsities)
            for (double input_sparsity : input_sparsities) {
              sparq::bench::SpmmSpec spec{
                  parsed_dtype, parsed_pattern, shape.out, shape.in, t, sp, th, seed, cold_weights};
              spec.input_sparsity = input_sparsity;
              const sparq::bench::Result r =
                  sparq::bench::run_case(spec, warmup, min_reps, min_seconds);
              const auto j = sparq::bench::to_json(r, copy_gbps);
              if (table) {
                std::printf(
                    "%-5s %-7s %6lld %6lld %6lld %8.2f %7d %10.1f %10.1f %10.1f %7.2fx "
                    "%7.2fx %9.1f %9.2e %9.2e  %s\n",
                    dtype.c_str(), pattern.c_str(), (long long)shape.out, (long long)shape.in,
                    (long long)t, sp, th, r.sparse_us, r.dense_us, r.dense_s8_us, r.speedup,
                    r.speedup_s8, j["sparse_gops"].get<double>(), r.sparse_error, r.dense_error,
                    r.kernel.c_str());
                if (cold_weights)
                  std::printf(
                      "      weights read per call: sparse %.2f MB at %.1f GB/s (%d copies), "
                      "dense %.2f MB at %.1f GB/s (%d copies)\n",
                      double(r.sparse_weight_bytes) / 1e6, j["sparse_weight_gbps"].get<double>(),
                      r.sparse_copies, double(r.dense_weight_bytes) / 1e6,
                      j["dense_weight_gbps"].get<double>(), r.dense_copies);
                if (input_sparsity >= 0)
                  std::printf(
                      "      input sparsity %.2f: from fp32 inputs (threshold, quantize, list the "
                      "non-zero inputs) %.1f us, %.2fx dense_us\n",
                      input_sparsity, r.sparse_fp32_us, r.dense_us / r.sparse_fp32_us);
                std::fflush(stdout);
              } else {
                std::cout << j.dump() << std::endl;
              }
            }
  } catch (const std::exception& e) {
    std::cerr << "sparq-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
