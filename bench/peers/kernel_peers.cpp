// sparq-kernel-peers: sparq's sparse kernels beside oneMKL's sparse BLAS and oneDNN's dense
// matmul, in one process, on the same pruned weight (4x1 blocks), shape, tokens and threads.
// Built only by bench/peers/kernel_peers.sh (oneMKL comes from PyPI: -DSPARQ_MKL_ROOT).
//
// Per case the timed runs rotate: sparq f32, sparq int8, oneDNN f32, oneDNN int8 (u8
// activations), oneMKL CSR and BSR (fp32: its sparse BLAS has no int8), each after warm-up;
// medians of the rounds. oneMKL runs y^T = W x^T as mkl_sparse_s_mm on column-major operands
// (x [tokens x in] row-major is x^T column-major: no transpose), with the inspector-executor's
// mm hint for this call shape and mkl_sparse_optimize. Its BSR takes square blocks: 4x4 blocks
// over the 4x1-pruned weight (a block holds the zeros of its neighbours).
#include <mkl.h>
#include <mkl_spblas.h>
#ifdef SPARQ_PEER_LIBXSMM
#include <libxsmm.h>
#endif

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/median.hpp"
#include "bench/passive_omp.hpp"
#include "bench/spmm_case.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void check(sparse_status_t s, const char* what) {
  if (s != SPARSE_STATUS_SUCCESS)
    throw std::runtime_error(std::string("oneMKL: ") + what + " failed with status " +
                             std::to_string(static_cast<int>(s)));
}

// One oneMKL sparse matrix (CSR, or BSR with square blocks), optimized for y^T = W x^T with the
// dense operands column-major (x and y as sparq holds them) or row-major (x^T [in x tokens] and
// y^T, laid out before timing: the layout oneMKL may prefer, at no cost to it).
class MklSpmm {
 public:
  MklSpmm(const std::vector<float>& w, MKL_INT out, MKL_INT in, MKL_INT tokens, int block,
          bool row_major)
      : out_(out),
        in_(in),
        tokens_(tokens),
        layout_(row_major ? SPARSE_LAYOUT_ROW_MAJOR : SPARSE_LAYOUT_COLUMN_MAJOR) {
    if (block == 1) {
      row_ptr_.push_back(0);
      for (MKL_INT r = 0; r < out; ++r) {
        for (MKL_INT c = 0; c < in; ++c)
          if (w[static_cast<size_t>(r * in + c)] != 0.0f) {
            cols_.push_back(c);
            values_.push_back(w[static_cast<size_t>(r * in + c)]);
          }
        row_ptr_.push_back(static_cast<MKL_INT>(cols_.size()));
      }
      check(mkl_sparse_s_create_csr(&a_, SPARSE_INDEX_BASE_ZERO, out, in, row_ptr_.data(),
                                    row_ptr_.data() + 1, cols_.data(), values_.data()),
            "mkl_sparse_s_create_csr");
    } else {
      if (out % block || in % block) throw std::runtime_error("BSR: shape not a block multiple");
      row_ptr_.push_back(0);
      for (MKL_INT br = 0; br < out / block; ++br) {
        for (MKL_INT bc = 0; bc < in / block; ++bc) {
          bool any = false;
          for (int i = 0; i < block && !any; ++i)
            for (int j = 0; j < block && !any; ++j)
              any = w[static_cast<size_t>((br * block + i) * in + bc * block + j)] != 0.0f;
          if (!any) continue;
          cols_.push_back(bc);
          for (int i = 0; i < block; ++i)  // row-major block
            for (int j = 0; j < block; ++j)
              values_.push_back(w[static_cast<size_t>((br * block + i) * in + bc * block + j)]);
        }
        row_ptr_.push_back(static_cast<MKL_INT>(cols_.size()));
      }
      check(mkl_sparse_s_create_bsr(&a_, SPARSE_INDEX_BASE_ZERO, SPARSE_LAYOUT_ROW_MAJOR,
                                    out / block, in / block, block, row_ptr_.data(),
                                    row_ptr_.data() + 1, cols_.data(), values_.data()),
            "mkl_sparse_s_create_bsr");
    }
    descr_.type = SPARSE_MATRIX_TYPE_GENERAL;
    check(mkl_sparse_set_mm_hint(a_, SPARSE_OPERATION_NON_TRANSPOSE, descr_, layout_, tokens, 1000),
          "mkl_sparse_set_mm_hint");
    check(mkl_sparse_optimize(a_), "mkl_sparse_optimize");
    x_ = sparq::bench::normal(static_cast<size_t>(tokens * in), 77, 1.0f);
    if (row_major) {  // B = x^T, [in][tokens]
      xt_.resize(x_.size());
      for (MKL_INT t = 0; t < tokens; ++t)
        for (MKL_INT c = 0; c < in; ++c)
          xt_[static_cast<size_t>(c * tokens + t)] = x_[static_cast<size_t>(t * in + c)];
    }
    y_.assign(static_cast<size_t>(tokens * out), 0.0f);
  }
  ~MklSpmm() { mkl_sparse_destroy(a_); }
  MklSpmm(const MklSpmm&) = delete;
  MklSpmm& operator=(const MklSpmm&) = delete;

  void run() {
    if (layout_ == SPARSE_LAYOUT_COLUMN_MAJOR)
      check(mkl_sparse_s_mm(SPARSE_OPERATION_NON_TRANSPOSE, 1.0f, a_, descr_, layout_, x_.data(),
                            tokens_, in_, 0.0f, y_.data(), out_),
            "mkl_sparse_s_mm");
    else  // y^T [out x tokens] row-major
      check(mkl_sparse_s_mm(SPARSE_OPERATION_NON_TRANSPOSE, 1.0f, a_, descr_, layout_, xt_.data(),
                            tokens_, tokens_, 0.0f, y_.data(), tokens_),
            "mkl_sparse_s_mm");
  }
  // max |y - W x^T| / max |W x^T| over the call's output.
  double max_error(const std::vector<float>& w) const {
    double worst = 0, scale = 0;
    for (MKL_INT t = 0; t < tokens_; ++t)
      for (MKL_INT r = 0; r < out_; ++r) {
        double s = 0;
        for (MKL_INT c = 0; c < in_; ++c)
          s += double(w[static_cast<size_t>(r * in_ + c)]) * x_[static_cast<size_t>(t * in_ + c)];
        const size_t at = layout_ == SPARSE_LAYOUT_COLUMN_MAJOR
                              ? static_cast<size_t>(t * out_ + r)
                              : static_cast<size_t>(r * tokens_ + t);
        worst = std::max(worst, std::fabs(s - y_[at]));
        scale = std::max(scale, std::fabs(s));
      }
    return worst / std::max(scale, 1e-30);
  }

 private:
  MKL_INT out_, in_, tokens_;
  sparse_layout_t layout_;
  std::vector<MKL_INT> row_ptr_, cols_;
  std::vector<float> values_, x_, xt_, y_;
  sparse_matrix_t a_ = nullptr;
  matrix_descr descr_{};
};

#ifdef SPARQ_PEER_LIBXSMM
// LIBXSMM's fixed-sparsity kernel (libxsmm_sfsspmdm): code generated for this weight's zeros at
// creation, y^T = W x^T on row-major operands (x^T laid out before timing). At creation LIBXSMM
// times its sparse kernel against its dense GEMM and keeps the faster.
class XsmmSpmm {
 public:
  XsmmSpmm(const std::vector<float>& w, int out, int in, int tokens)
      : out_(out), in_(in), tokens_(tokens) {
    handle_ = libxsmm_sfsspmdm_create(out, tokens, in, in, tokens, tokens, 1.0f, 0.0f, 0, w.data());
    if (!handle_) throw std::runtime_error("libxsmm_sfsspmdm_create failed");
    const auto x = sparq::bench::normal(static_cast<size_t>(tokens * in), 78, 1.0f);
    xt_.resize(x.size());
    for (int t = 0; t < tokens; ++t)
      for (int c = 0; c < in; ++c)
        xt_[static_cast<size_t>(c * tokens + t)] = x[static_cast<size_t>(t * in + c)];
    y_.assign(static_cast<size_t>(out * tokens), 0.0f);
  }
  ~XsmmSpmm() { libxsmm_sfsspmdm_destroy(handle_); }
  XsmmSpmm(const XsmmSpmm&) = delete;
  XsmmSpmm& operator=(const XsmmSpmm&) = delete;
  void run() { libxsmm_sfsspmdm_execute(handle_, xt_.data(), y_.data()); }
  double max_error(const std::vector<float>& w) const {
    double worst = 0, scale = 0;
    for (int r = 0; r < out_; ++r)
      for (int t = 0; t < tokens_; ++t) {
        double s = 0;
        for (int c = 0; c < in_; ++c)
          s += double(w[static_cast<size_t>(r * in_ + c)]) *
               xt_[static_cast<size_t>(c * tokens_ + t)];
        worst = std::max(worst, std::fabs(s - y_[static_cast<size_t>(r * tokens_ + t)]));
        scale = std::max(scale, std::fabs(s));
      }
    return worst / std::max(scale, 1e-30);
  }

 private:
  int out_, in_, tokens_;
  libxsmm_sfsspmdm* handle_ = nullptr;
  std::vector<float> xt_, y_;
};
#endif

double time_us(const std::function<void()>& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  sparq::bench::restart_with_passive_openmp(argv);
  CLI::App app{"sparq-kernel-peers: sparq beside oneMKL sparse BLAS and oneDNN dense"};
  std::vector<std::string> shapes{"3072x768", "768x3072"};
  std::vector<int64_t> tokens{128};
  std::vector<double> sparsities{0.7, 0.8, 0.9};
  int threads = 1, warmup = 5, min_reps = 30;
  double min_seconds = 1.0;
  std::string json_path;
  bool with_libxsmm = false;
#ifdef SPARQ_PEER_LIBXSMM
  app.add_flag("--libxsmm", with_libxsmm,
               "also LIBXSMM's libxsmm_sfsspmdm (its code generator can take minutes per weight: "
               "over 10 minutes for 3072x768 at 80 % on Zen 4, inside "
               "libxsmm_generator_spgemm_csr_asparse_reg)");
#endif
  app.add_option("--json", json_path, "also append one JSON line per case to this file");
  app.add_option("--shapes", shapes, "OUTxIN pairs")->delimiter(',')->capture_default_str();
  app.add_option("--tokens", tokens, "tokens")->delimiter(',')->capture_default_str();
  app.add_option("--sparsity", sparsities, "fractions of zero 4x1 blocks")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--threads", threads, "threads of every runtime")->capture_default_str();
  app.add_option("--min-reps", min_reps, "minimum timed rounds")->capture_default_str();
  app.add_option("--min-seconds", min_seconds, "minimum timing per case")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    // oneMKL on GNU OpenMP (the runtime oneDNN uses here), so the two do not fight over threads.
    mkl_set_threading_layer(MKL_THREADING_GNU);
    mkl_set_num_threads(threads);
    MKLVersion v;
    mkl_get_version(&v);
    std::printf(
        "sparq-kernel-peers: sparq vs oneMKL %d.%d.%d sparse BLAS (%s) and oneDNN dense, %d "
        "thread(s); medians of interleaved rounds; weights pruned in 4x1 blocks; CPU features: "
        "%s\n",
        v.MajorVersion, v.MinorVersion, v.UpdateVersion, v.Processor, threads,
        sparq::cpu_features_name());
#ifdef SPARQ_PEER_LIBXSMM
    if (with_libxsmm) libxsmm_init();
    if (with_libxsmm)
      std::printf(
          "LIBXSMM %s, target %s (libxsmm_sfsspmdm: its sparse JIT or its dense GEMM, "
          "whichever it timed faster at creation)\n",
          LIBXSMM_VERSION, libxsmm_get_target_arch());
#endif
    std::printf("%6s %6s %6s %8s | %9s %9s %9s %9s %9s %9s %9s | %s\n", "out", "in", "tokens",
                "sparsity", "sparq_f32", "sparq_i8", "dnnl_f32", "dnnl_i8", "mkl_csr", "mkl_bsr4",
                "xsmm_f32", "sparq f32 vs mkl csr / xsmm / dnnl f32; sparq int8 vs dnnl int8");
    for (const std::string& shape : shapes) {
      const auto x = shape.find('x');
      if (x == std::string::npos) throw std::invalid_argument("--shapes: OUTxIN, got " + shape);
      const int64_t out = std::stoll(shape.substr(0, x)), in = std::stoll(shape.substr(x + 1));
      for (int64_t t : tokens)
        for (double sp : sparsities) {
          sparq::bench::SpmmSpec f32{
              sparq::DType::f32, sparq::Pattern::blocks(4, 1), out, in, t, sp, threads};
          sparq::bench::SpmmSpec i8 = f32;
          i8.dtype = sparq::DType::int8;
          sparq::bench::SpmmCase cf(f32), ci(i8);
          const std::vector<float> w = sparq::bench::pruned_weight(f32);
          const auto o = static_cast<MKL_INT>(out), n = static_cast<MKL_INT>(in),
                     tk = static_cast<MKL_INT>(t);
          MklSpmm csr(w, o, n, tk, 1, false), csr_row(w, o, n, tk, 1, true),
              bsr(w, o, n, tk, 4, false), bsr_row(w, o, n, tk, 4, true);
#ifdef SPARQ_PEER_LIBXSMM
          std::optional<XsmmSpmm> xsmm;
          if (with_libxsmm)
            xsmm.emplace(w, static_cast<int>(out), static_cast<int>(in), static_cast<int>(t));
#endif
          const int kRuns = with_libxsmm ? 9 : 8;
          const std::function<void()> runs[9] = {
              [&] { cf.run_sparse(); }, [&] { ci.run_sparse(); }, [&] { cf.run_dense(); },
              [&] { ci.run_dense(); },  [&] { csr.run(); },       [&] { bsr.run(); },
              [&] { csr_row.run(); },   [&] { bsr_row.run(); },
#ifdef SPARQ_PEER_LIBXSMM
              [&] { xsmm->run(); },
#else
              [] {},
#endif
          };
          for (int i = 0; i < warmup; ++i)
            for (int k = 0; k < kRuns; ++k) runs[k]();
          std::vector<double> times[9];
          const auto start = Clock::now();
          int rounds = 0;
          while (rounds < min_reps ||
                 std::chrono::duration<double>(Clock::now() - start).count() < min_seconds) {
            for (int k = 0; k < kRuns; ++k) {
              const int which = (rounds + k) % kRuns;
              times[which].push_back(time_us(runs[which]));
            }
            ++rounds;
          }
          double m[9] = {};
          for (int k = 0; k < kRuns; ++k) m[k] = sparq::bench::median(times[k]);
          // Each oneMKL format at its faster layout.
          const bool csr_rows = m[6] < m[4], bsr_rows = m[7] < m[5];
          m[4] = std::min(m[4], m[6]);
          m[5] = std::min(m[5], m[7]);
          const double csr_err = std::max(csr.max_error(w), csr_row.max_error(w)),
                       bsr_err = std::max(bsr.max_error(w), bsr_row.max_error(w));
          double xsmm_us = std::nan(""), xsmm_err = std::nan("");
#ifdef SPARQ_PEER_LIBXSMM
          if (xsmm) {
            xsmm_us = m[8];
            xsmm_err = xsmm->max_error(w);
          }
#endif
          std::printf(
              "%6lld %6lld %6lld %8.2f | %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f | %.2fx / "
              "%.2fx / %.2fx; %.2fx  (errors: mkl %.1e / %.1e, xsmm %.1e; mkl layouts %s / %s)\n",
              static_cast<long long>(out), static_cast<long long>(in), static_cast<long long>(t),
              sp, m[0], m[1], m[2], m[3], m[4], m[5], xsmm_us, m[4] / m[0], xsmm_us / m[0],
              m[2] / m[0], m[3] / m[1], csr_err, bsr_err, xsmm_err, csr_rows ? "row" : "col",
              bsr_rows ? "row" : "col");
          const nlohmann::json j = {
              {"out", out},
              {"in", in},
              {"tokens", t},
              {"sparsity", sp},
              {"threads", threads},
              {"sparq_f32_us", m[0]},
              {"sparq_int8_us", m[1]},
              {"onednn_f32_us", m[2]},
              {"onednn_int8_us", m[3]},
              {"mkl_csr_f32_us", m[4]},
              {"mkl_bsr4_f32_us", m[5]},
              {"mkl_csr_error", csr_err},
              {"mkl_bsr_error", bsr_err},
              {"mkl_csr_layout", csr_rows ? "row-major" : "column-major"},
              {"mkl_bsr_layout", bsr_rows ? "row-major" : "column-major"},
              {"libxsmm_f32_us", std::isnan(xsmm_us) ? nlohmann::json() : nlohmann::json(xsmm_us)},
              {"libxsmm_error", std::isnan(xsmm_err) ? nlohmann::json() : nlohmann::json(xsmm_err)},
              {"rounds", rounds},
              {"sparq_f32_kernel", cf.info().kernel},
              {"sparq_int8_kernel", ci.info().kernel}};
          if (!json_path.empty()) std::ofstream(json_path, std::ios::app) << j.dump() << "\n";
          std::fflush(stdout);
        }
    }
  } catch (const std::exception& e) {
    std::cerr << "sparq-kernel-peers: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
