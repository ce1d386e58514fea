// One timed case of sparq-bench spmm: sparq and oneDNN interleaved on the same work, medians of
// the times and of the per-pair ratios, errors against the reference, and the JSON record.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/spmm_case.hpp"

namespace sparq::bench {

struct Result {
  SpmmSpec spec;
  double sparse_us, sparse_fp32_us, dense_us, dense_s8_us, speedup, speedup_s8, sparse_error,
      dense_error, dense_s8_error;
  int reps;
  std::string kernel, dense_impl;
  double block_sparsity;
  // Weight bytes one call reads, and how many copies each side rotated over.
  int64_t sparse_weight_bytes, dense_weight_bytes;
  int sparse_copies, dense_copies;
};

Result run_case(const SpmmSpec& spec, int warmup, int min_reps, double min_seconds);

// Thread scaling of one case: the same layer (and oneDNN's dense matmul) built for 1 and for
// `threads` threads, the four timed runs interleaved in rotating order, so that the machine's
// noise hits both thread counts alike; scaling = the median of the per-round ratios t1 / tN.
// Measured twice: single calls after the others' runs (a pool's idle threads have gone to sleep
// and must be woken: tens of microseconds under a hypervisor), and bursts of calls back to back
// (the threads stay awake, as between the layers of a forward pass).
struct ScalingResult {
  struct Mode {
    double sparse_1_us, sparse_n_us, sparse_scaling, dense_1_us, dense_n_us, dense_scaling;
  };
  SpmmSpec spec;  // spec.threads: the larger count
  Mode modes[2];  // [0]: single calls, [1]: bursts (per call)
  int reps;
  std::string kernel;
};
ScalingResult run_scaling(const SpmmSpec& spec, int warmup, int min_reps, double min_seconds);

// copy_gbps: the machine's measured copy bandwidth, printed beside the achieved weight GB/s
// (<= 0: not measured).
nlohmann::json to_json(const Result& r, double copy_gbps = 0.0);

}  // namespace sparq::bench
