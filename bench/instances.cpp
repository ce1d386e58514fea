#include "bench/instances.hpp"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "bench/median.hpp"
#include "sparq/error.hpp"
#include "src/threading.hpp"

namespace sparq::bench {

using Clock = std::chrono::steady_clock;

InstancesResult run_instances(const EncoderFactory& build, const models::EncoderInput& input,
                              const InstancesSpec& spec) {
  const int n = spec.instances, k = spec.threads_per_instance;
  if (n < 1 || k < 1)
    throw InvalidArgument("--instances and --threads-per-instance must be >= 1, got " +
                          std::to_string(n) + " and " + std::to_string(k));
  if (spec.requests < 1) throw InvalidArgument("--requests must be >= 1");
  // Instance i on cores [i k, (i + 1) k) of the allowed set, when they all fit; pool i + 1 (the
  // shared encoder: pool 0, one arena for all).
  const std::vector<int> cpus = allowed_cpus();
  const bool fits = static_cast<int64_t>(n) * k <= static_cast<int64_t>(cpus.size());
  auto cores_of = [&](int i) {
    return std::vector<int>(cpus.begin() + i * k, cpus.begin() + (i + 1) * k);
  };
  std::vector<models::BertEncoder> encoders;
  if (spec.shared) {
    encoders.push_back(build(k, 0));
  } else {
    for (int i = 0; i < n; ++i) encoders.push_back(build(k, i + 1));
  }
  bool pinned = fits && !spec.shared;
  if (pinned)
    for (int i = 0; i < n; ++i) pinned = pin_pool(k, i + 1, cores_of(i)) && pinned;

  std::atomic<int> next{0};
  std::atomic<bool> all_pinned{pinned};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(n));
  std::optional<Clock::time_point> start;
  std::barrier ready(n, [&]() noexcept { start = Clock::now(); });
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      if (pinned && !pin_this_thread(cores_of(i))) all_pinned = false;
      const models::BertEncoder& e = encoders[spec.shared ? 0 : static_cast<size_t>(i)];
      for (int w = 0; w < spec.warmup; ++w) (void)e.forward(input);
      ready.arrive_and_wait();  // the clock starts when every instance is warm
      auto& mine = latencies[static_cast<size_t>(i)];
      while (next.fetch_add(1) < spec.requests) {
        const auto t0 = Clock::now();
        (void)e.forward(input);
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - *start).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  InstancesResult r;
  r.spec = spec;
  r.seconds = seconds;
  r.throughput = static_cast<double>(spec.requests * input.batch) / seconds;
  r.p50_ms = percentile(all, 0.5);
  r.p90_ms = percentile(all, 0.9);
  r.p99_ms = percentile(all, 0.99);
  r.pinned = all_pinned;
  return r;
}

std::vector<std::pair<int, int>> search_points(int cores) {
  auto powers_up_to = [](int limit) {
    std::vector<int> v;
    for (int p = 1; p <= limit; p *= 2) v.push_back(p);
    if (v.back() != limit) v.push_back(limit);
    return v;
  };
  std::vector<std::pair<int, int>> points;
  for (int k : powers_up_to(std::max(1, cores)))
    for (int n : powers_up_to(std::max(1, cores / k))) points.emplace_back(n, k);
  return points;
}

void print_instances_header() {
  std::printf("  %9s %8s %-9s %6s %10s %9s %9s %9s  %s\n", "instances", "threads", "model",
              "pinned", "seq/s", "p50 ms", "p90 ms", "p99 ms", "within bound");
}

void print_instances_row(const InstancesResult& r, double latency_bound_ms) {
  std::printf("  %9d %8d %-9s %6s %10.1f %9.2f %9.2f %9.2f  %s\n", r.spec.instances,
              r.spec.threads_per_instance, r.spec.shared ? "shared" : "separate",
              r.pinned ? "yes" : "no", r.throughput, r.p50_ms, r.p90_ms, r.p99_ms,
              latency_bound_ms <= 0          ? "-"
              : r.p90_ms <= latency_bound_ms ? "yes"
                                             : "no");
  std::fflush(stdout);
}

std::string instances_json(const InstancesResult& r, double latency_bound_ms) {
  nlohmann::json j = {{"instances", r.spec.instances},
                      {"threads_per_instance", r.spec.threads_per_instance},
                      {"model", r.spec.shared ? "shared" : "separate"},
                      {"pinned", r.pinned},
                      {"requests", r.spec.requests},
                      {"seconds", r.seconds},
                      {"throughput", r.throughput},
                      {"p50_ms", r.p50_ms},
                      {"p90_ms", r.p90_ms},
                      {"p99_ms", r.p99_ms}};
  if (latency_bound_ms > 0) {
    j["latency_bound_ms"] = latency_bound_ms;
    j["within_bound"] = r.p90_ms <= latency_bound_ms;
  }
  return j.dump();
}

}  // namespace sparq::bench
