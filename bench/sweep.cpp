#include "bench/sweep.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "bench/bandwidth.hpp"
#include "bench/spmm_run.hpp"
#include "sparq/sparq.hpp"

namespace sparq::bench {
namespace {

// Token counts up to 4 are decode steps: their weights are read cold, as in a decoder.
bool cold_for(int64_t tokens) { return tokens <= 4; }

std::string chart_name(const std::string& dtype, int64_t tokens) {
  return "speedup_" + dtype + "_tokens" + std::to_string(tokens);
}

// A gnuplot script drawing every (dtype, tokens) chart from the CSV; columns: see write_header.
std::string gnuplot_script(const SweepOptions& o, const std::string& csv) {
  std::string s =
      "set datafile separator ','\nset terminal pngcairo size 720,480\n"
      "set xlabel 'sparsity'\nset ylabel 'speedup over oneDNN dense (x)'\n"
      "set key top left\nset grid\nset logscale y 2\nset yrange [0.25:*]\n"
      "set xrange [0.45:1]\n";
  for (const auto& dtype : o.dtypes)
    for (int64_t t : o.tokens) {
      s += "set output '" + chart_name(dtype, t) + ".png'\n";
      s += "set title 'sparq " + dtype + ", " + std::to_string(o.out) + "x" + std::to_string(o.in) +
           ", tokens " + std::to_string(t) + (cold_for(t) ? " (cold weights)" : "") + ", threads " +
           std::to_string(o.threads) + "'\n";
      s += "plot ";
      for (size_t p = 0; p < o.patterns.size(); ++p) {
        const std::string& pat = o.patterns[p];
        // Rows of this dtype, token count and pattern: x = sparsity ($4), y = speedup ($7).
        s += std::string(p ? ", " : "") + "'" + csv + "' using (strcol(1) eq '" + dtype +
             "' && strcol(2) eq '" + pat + "' && $3 == " + std::to_string(t) +
             " ? $4 : 1/0):7 with linespoints title '" + pat + "'";
      }
      s += ", 1 with lines dashtype 2 lc 'gray' title 'dense'\n";
    }
  return s;
}

}  // namespace

int run_sweep(const SweepOptions& o) {
  namespace fs = std::filesystem;
  fs::create_directories(o.out_dir);
  const std::string csv_name = "sweep.csv";
  std::ofstream csv(fs::path(o.out_dir) / csv_name);
  csv << "dtype,pattern,tokens,sparsity,sparse_us,dense_us,speedup,kernel,cold_weights,"
         "sparse_weight_gbps,dense_weight_gbps,copy_gbps,out,in,threads\n";
  const bool any_cold = [&] {
    for (int64_t t : o.tokens)
      if (cold_for(t)) return true;
    return false;
  }();
  const double copy_gbps = any_cold ? copy_bandwidth_gbps() : 0.0;
  std::printf("sparq-bench sweep: %lldx%lld, threads %d -> %s/%s\n", static_cast<long long>(o.out),
              static_cast<long long>(o.in), o.threads, o.out_dir.c_str(), csv_name.c_str());
  for (const auto& dtype : o.dtypes)
    for (int64_t t : o.tokens)
      for (const auto& pat : o.patterns) {
        const Pattern pattern = Pattern::parse(pat);
        std::set<double> done;
        for (double sp : o.sparsities) {
          // N:M fixes the sparsity: one point, at 1 - N/M.
          const double s =
              pattern.kind == Pattern::Kind::n_m ? 1.0 - double(pattern.n) / pattern.m : sp;
          if (!done.insert(s).second) continue;
          SpmmSpec spec{parse_dtype(dtype), pattern, o.out, o.in, t, s, o.threads, 1, cold_for(t)};
          const Result r = run_case(spec, 3, o.min_reps, o.min_seconds);
          const auto j = to_json(r, cold_for(t) ? copy_gbps : 0.0);
          csv << dtype << ',' << pat << ',' << t << ',' << s << ',' << r.sparse_us << ','
              << r.dense_us << ',' << r.speedup << ',' << r.kernel << ',' << spec.cold_weights
              << ',' << j["sparse_weight_gbps"].get<double>() << ','
              << j["dense_weight_gbps"].get<double>() << ',' << (cold_for(t) ? copy_gbps : 0.0)
              << ',' << o.out << ',' << o.in << ',' << o.threads << '\n';
          csv.flush();
          std::printf(
              "  %-5s %-5s tokens %4lld sparsity %.2f: %8.1f us vs dense %8.1f us = %5.2fx  "
              "(%s)\n",
              dtype.c_str(), pat.c_str(), static_cast<long long>(t), s, r.sparse_us, r.dense_us,
              r.speedup, r.kernel.c_str());
          std::fflush(stdout);
        }
      }
  csv.close();
  const fs::path script = fs::path(o.out_dir) / "charts.gp";
  std::ofstream(script) << gnuplot_script(o, csv_name);
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0) {
    std::printf(
        "gnuplot not found: the charts were not drawn; install it (apt install "
        "gnuplot-nox) and run: cd %s && gnuplot charts.gp\n",
        o.out_dir.c_str());
    return 0;
  }
  const std::string command = "cd '" + o.out_dir + "' && gnuplot charts.gp";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "sparq-bench sweep: gnuplot failed on %s\n", script.c_str());
    return 1;
  }
  std::printf("charts: %s/speedup_<dtype>_tokens<N>.png\n", o.out_dir.c_str());
  return 0;
}

}  // namespace sparq::bench
