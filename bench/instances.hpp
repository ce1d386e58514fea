// Throughput of several encoder instances serving one stream of requests (sparq-eval
// --instances, --latency-bound): N instances of K threads each, every instance on its own thread
// pool and, where the machine allows, its own cores; requests taken from a shared counter until
// the stream is served. Reports aggregate sequences per second and the per-request latency
// percentiles; the search runs every (N, K) with N x K <= cores and keeps the highest throughput
// whose p90 latency stays within the bound.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sparq/models/bert_encoder.hpp"

namespace sparq::bench {

// Builds an encoder for an instance: its thread count and pool.
using EncoderFactory = std::function<models::BertEncoder(int threads, int pool)>;

struct InstancesSpec {
  int instances = 1, threads_per_instance = 1;
  bool shared = false;  // one encoder object for all instances (and one pool), else one each
  int requests = 200;   // served, in all; each instance first serves `warmup` untimed ones
  int warmup = 5;
};

struct InstancesResult {
  InstancesSpec spec;
  double seconds = 0;     // wall time of the timed stream
  double throughput = 0;  // sequences per second (requests x batch / seconds)
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  bool pinned = false;  // every instance's threads pinned to its own cores
};

InstancesResult run_instances(const EncoderFactory& build, const models::EncoderInput& input,
                              const InstancesSpec& spec);

// The (N, K) points a search on `cores` cores runs: K in powers of two up to cores (and cores
// itself), N in powers of two up to cores / K (and cores / K itself).
std::vector<std::pair<int, int>> search_points(int cores);

// Prints a table row (or a JSON line) per result.
void print_instances_header();
void print_instances_row(const InstancesResult& r, double latency_bound_ms);
std::string instances_json(const InstancesResult& r, double latency_bound_ms);

}  // namespace sparq::bench
