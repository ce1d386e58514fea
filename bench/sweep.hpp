// sparq-bench sweep: the grid dtype x pattern x sparsity x tokens on one shape, each case timed as
// in `spmm`, written to a CSV; one PNG chart per dtype and token count (speedup over oneDNN
// dense vs sparsity, one line per pattern) rendered with gnuplot when it is installed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparq::bench {

struct SweepOptions {
  std::vector<std::string> dtypes{"f32", "bf16", "int8"};
  std::vector<std::string> patterns{"4x1", "16x1", "4x4", "1x4", "2:4"};
  std::vector<double> sparsities{0.5, 0.6, 0.7, 0.8, 0.9, 0.95};
  std::vector<int64_t> tokens{1, 16, 128};
  int64_t out = 3072, in = 768;
  int threads = 1;
  double min_seconds = 0.3;
  int min_reps = 10;
  std::string out_dir = "sweep";
};

// Returns the process exit status (0: CSV and, where gnuplot exists, the charts written).
int run_sweep(const SweepOptions& options);

}  // namespace sparq::bench
