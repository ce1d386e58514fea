// sparq-bench: sparse kernels against oneDNN's dense matmul, in one process, same shape, dtype and
// threads. Repetitions of the two alternate, so machine noise hits both alike; the speedup is
// the median of the per-pair ratios.
//
//   sparq-bench spmm --dtype int8 --pattern 4x1 --out 3072 --in 768 --tokens 128
//                    --sparsity 0.7,0.8,0.9 --threads 1 [--format json]
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

#include "bench/spmm_case.hpp"
#include "jit/cpu_features.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

template <typename F>
double time_us(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Shape {
  int64_t out, in;
};

struct Result {
  sparq::bench::SpmmSpec spec;
  double sparse_us, sparse_fp32_us, dense_us, dense_s8_us, speedup, speedup_s8, sparse_error,
      dense_error, dense_s8_error;
  int reps;
  std::string kernel, dense_impl;
  double block_sparsity;
};

Result run_case(const sparq::bench::SpmmSpec& spec, int warmup, int min_reps, double min_seconds) {
  sparq::bench::SpmmCase c(spec);
  for (int i = 0; i < warmup; ++i) {
    c.run_sparse();
    c.run_sparse_fp32();
    c.run_dense();
    c.run_dense_s8();
  }
  std::vector<double> sparse_t, sparse_fp32_t, dense_t, dense_s8_t, ratio, ratio_s8;
  const auto start = Clock::now();
  while (static_cast<int>(ratio.size()) < min_reps ||
         std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    // Rotate the order of the four timed runs, so that none always follows the same one (the
    // run before leaves the caches warm or cold for the next).
    double s = 0, s32 = 0, d = 0, d8 = 0;
    const std::function<void()> runs[4] = {[&] { s = time_us([&] { c.run_sparse(); }); },
                                           [&] { d = time_us([&] { c.run_dense(); }); },
                                           [&] { s32 = time_us([&] { c.run_sparse_fp32(); }); },
                                           [&] { d8 = time_us([&] { c.run_dense_s8(); }); }};
    for (size_t k = 0; k < 4; ++k) runs[(ratio.size() + k) % 4]();
    sparse_t.push_back(s);
    sparse_fp32_t.push_back(s32);
    dense_t.push_back(d);
    ratio.push_back(d / s);
    if (c.has_s8_baseline()) {
      dense_s8_t.push_back(d8);
      ratio_s8.push_back(d8 / s);
    }
    if (ratio.size() >= 100000) break;
  }
  c.run_dense_s8();
  const double dense_s8_error = c.has_s8_baseline() ? c.dense_max_error() : 0.0;
  c.run_dense();  // leave the u8 baseline's output for the error check
  c.run_sparse();
  const auto info = c.info();
  const bool s8 = c.has_s8_baseline();
  return {spec,
          median(sparse_t),
          median(sparse_fp32_t),
          median(dense_t),
          s8 ? median(dense_s8_t) : 0.0,
          median(ratio),
          s8 ? median(ratio_s8) : 0.0,
          c.sparse_max_error(),
          c.dense_max_error(),
          dense_s8_error,
          static_cast<int>(ratio.size()),
          info.kernel,
          c.dense_implementation(),
          info.block_sparsity};
}

nlohmann::json to_json(const Result& r) {
  const auto& s = r.spec;
  const double ops = 2.0 * double(s.tokens) * double(s.out) * double(s.in);
  return {{"dtype", sparq::to_string(s.dtype)},
          {"pattern", s.pattern.to_string()},
          {"out", s.out},
          {"in", s.in},
          {"tokens", s.tokens},
          {"sparsity", s.sparsity},
          {"block_sparsity", r.block_sparsity},
          {"threads", s.threads},
          {"sparse_us", r.sparse_us},
          {"sparse_fp32_in_us", r.sparse_fp32_us},
          {"dense_us", r.dense_us},
          {"speedup", r.speedup},
          {"dense_s8_us", r.dense_s8_us},
          {"speedup_vs_s8", r.speedup_s8},
          {"sparse_gops", ops / r.sparse_us / 1e3},
          {"dense_gops", ops / r.dense_us / 1e3},
          {"sparse_max_error", r.sparse_error},
          {"dense_max_error", r.dense_error},
          {"dense_s8_max_error", r.dense_s8_error},
          {"reps", r.reps},
          {"kernel", r.kernel},
          {"dense_kernel",
           "onednn:" + r.dense_impl + (s.dtype == sparq::DType::int8 ? ":u8s8" : ":f32")},
          {"isa", sparq::cpu_isa_name()}};
}

}  // namespace

int main(int argc, char** argv) {
  // oneDNN (the dense baseline) threads with OpenMP, sparq with oneTBB. OpenMP's default is to
  // spin for a while after each parallel region, which steals the cores sparq's threads need
  // next. libgomp reads OMP_WAIT_POLICY when it loads, so set it and start again.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
  }
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
  spmm->add_option("--dtype", dtype, "int8 | f32 | bf16")->capture_default_str();
  spmm->add_option("--pattern", pattern, "4x1 | auto | dense | RxC | N:M")->capture_default_str();
  spmm->add_option("--out", outs, "output features (several: one case each)")->delimiter(',');
  spmm->add_option("--in", ins, "input features")->delimiter(',');
  spmm->add_option("--shapes", shapes,
                   "OUTxIN pairs, e.g. 3072x768,768x3072 (instead of --out/--in)")
      ->delimiter(',');
  spmm->add_option("--tokens", tokens, "tokens (rows of x)")->delimiter(',');
  spmm->add_option("--sparsity", sparsities, "fraction of pruned blocks, 0..1")->delimiter(',');
  spmm->add_option("--threads", threads, "threads (0: all cores)")->delimiter(',');
  spmm->add_option("--warmup", warmup, "warm-up runs of each side")->capture_default_str();
  spmm->add_option("--min-reps", min_reps, "minimum timed pairs")->capture_default_str();
  spmm->add_option("--min-seconds", min_seconds, "minimum timing per case")->capture_default_str();
  spmm->add_option("--seed", seed, "random seed")->capture_default_str();
  spmm->add_option("--format", format, "table | json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    std::vector<Shape> shape_list;
    if (!shapes.empty()) {
      for (const auto& s : shapes) {
        const auto x = s.find('x');
        if (x == std::string::npos)
          throw sparq::InvalidArgument("--shapes: expected OUTxIN, got " + s);
        shape_list.push_back({std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))});
      }
    } else {
      for (auto o : outs)
        for (auto i : ins) shape_list.push_back({o, i});
    }
    // Reject a bad dtype or pattern before any output.
    const sparq::DType parsed_dtype = sparq::parse_dtype(dtype);
    const sparq::Pattern parsed_pattern = sparq::Pattern::parse(pattern);
    const bool table = format == "table";
    if (table) {
      std::printf(
          "sparq-bench spmm: sparq %s vs oneDNN dense matmul (dense_us: u8 activations, "
          "oneDNN's fastest int8 path; dense_s8: s8 activations), same shape, threads; "
          "medians of interleaved runs; sparq kernel ISA: %s\n",
          pattern.c_str(), sparq::cpu_isa_name());
      std::printf("%-5s %-7s %6s %6s %6s %8s %7s %10s %10s %10s %8s %8s %9s %9s %9s  %s\n", "dtype",
                  "pattern", "out", "in", "tokens", "sparsity", "threads", "sparse_us", "dense_us",
                  "dense_s8", "speedup", "vs_s8", "sp_GOPS", "sp_err", "dense_err", "kernel");
    }
    for (const Shape& shape : shape_list)
      for (auto t : tokens)
        for (int th : threads)
          for (double sp : sparsities) {
            sparq::bench::SpmmSpec spec{
                parsed_dtype, parsed_pattern, shape.out, shape.in, t, sp, th, seed};
            const Result r = run_case(spec, warmup, min_reps, min_seconds);
            const auto j = to_json(r);
            if (table) {
              std::printf(
                  "%-5s %-7s %6lld %6lld %6lld %8.2f %7d %10.1f %10.1f %10.1f %7.2fx "
                  "%7.2fx %9.1f %9.2e %9.2e  %s\n",
                  dtype.c_str(), pattern.c_str(), (long long)shape.out, (long long)shape.in,
                  (long long)t, sp, th, r.sparse_us, r.dense_us, r.dense_s8_us, r.speedup,
                  r.speedup_s8, j["sparse_gops"].get<double>(), r.sparse_error, r.dense_error,
                  r.kernel.c_str());
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
