#include "bench/spmm_run.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include "bench/median.hpp"

namespace sparq::bench {
namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double time_us(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

Result run_case(const SpmmSpec& spec, int warmup, int min_reps, double min_seconds) {
  SpmmCase c(spec);
  // Every weight copy runs before the clock starts: a layer on oneDNN makes its primitive on its
  // first call, which a rotation over cold copies would otherwise time.
  const int warm = std::max({warmup, c.sparse_copies(), c.dense_copies()});
  for (int i = 0; i < warm; ++i) {
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
  return {spec, median(sparse_t), median(sparse_fp32_t), median(dense_t),
          s8 ? median(dense_s8_t) : 0.0, median(ratio), s8 ? median(ratio_s8) : 0.0,
          c.sparse_max_error(), c.dense_max_error(), dense_s8_error, static_cast<int>(ratio.size()),
          // The kernel this token count runs on.
          spec.tokens <= 4 && !info.decode_kernel.empty() ? info.decode_kernel : info.kernel,
          c.dense_implementation(), info.block_sparsity, c.sparse_weight_bytes(),
          c.dense_weight_bytes(), c.sparse_copies(), c.dense_copies()};
}

ScalingResult run_scaling(const SpmmSpec& spec, int warmup, int min_reps, double min_seconds) {
  SpmmSpec one = spec;
  one.threads = 1;
  SpmmCase c1(one), cn(spec);
  const int warm = std::max(
      {warmup, c1.sparse_copies(), c1.dense_copies(), cn.sparse_copies(), cn.dense_copies()});
  for (int i = 0; i < warm; ++i) {
    c1.run_sparse();
    cn.run_sparse();
    c1.run_dense();
    cn.run_dense();
  }
  // Each timed run is one call (the pool's threads have slept since their last call, as a layer
  // called now and then finds them) or a burst of kBurst calls back to back, per call (the
  // threads stay awake, as between the layers of a model's forward pass).
  constexpr int kBurst = 8;
  std::vector<double> t[2][4], ratio[2][2];
  const auto start = Clock::now();
  int rounds = 0;
  while (rounds < min_reps ||
         std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
    for (int burst = 0; burst < 2; ++burst) {
      const int calls = burst ? kBurst : 1;
      double r[4] = {};
      const std::function<void()> fs[4] = {[&] { c1.run_sparse(); }, [&] { cn.run_sparse(); },
                                           [&] { c1.run_dense(); }, [&] { cn.run_dense(); }};
      for (int k = 0; k < 4; ++k) {
        const int which = (rounds + k) % 4;
        r[which] = time_us([&] {
                     for (int c = 0; c < calls; ++c) fs[which]();
                   }) /
                   calls;
      }
      for (int k = 0; k < 4; ++k) t[burst][k].push_back(r[k]);
      ratio[burst][0].push_back(r[0] / r[1]);
      ratio[burst][1].push_back(r[2] / r[3]);
    }
    if (++rounds >= 100000) break;
  }
  const auto info = cn.info();
  ScalingResult out;
  out.spec = spec;
  out.reps = rounds;
  out.kernel = spec.tokens <= 4 && !info.decode_kernel.empty() ? info.decode_kernel : info.kernel;
  for (int burst = 0; burst < 2; ++burst)
    out.modes[burst] = {median(t[burst][0]), median(t[burst][1]), median(ratio[burst][0]),
                        median(t[burst][2]), median(t[burst][3]), median(ratio[burst][1])};
  return out;
}

nlohmann::json to_json(const Result& r, double copy_gbps) {
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
          {"dense_kernel", "onednn:" + r.dense_impl},
          {"isa", sparq::cpu_isa_name()},
          {"cpu_features", sparq::cpu_features_name()},
          {"cold_weights", s.cold_weights},
          {"input_sparsity", s.input_sparsity},
          {"sparse_copies", r.sparse_copies},
          {"dense_copies", r.dense_copies},
          {"sparse_weight_bytes", r.sparse_weight_bytes},
          {"dense_weight_bytes", r.dense_weight_bytes},
          {"sparse_weight_gbps", double(r.sparse_weight_bytes) / r.sparse_us / 1e3},
          {"dense_weight_gbps", double(r.dense_weight_bytes) / r.dense_us / 1e3},
          {"copy_gbps", copy_gbps}};
}

}  // namespace sparq::bench
