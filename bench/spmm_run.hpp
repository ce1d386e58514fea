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

// copy_gbps: the machine's measured copy bandwidth, printed beside the achieved weight GB/s
// (<= 0: not measured).
nlohmann::json to_json(const Result& r, double copy_gbps = 0.0);

}  // namespace sparq::bench
