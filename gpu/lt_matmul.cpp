#include "gpu/lt_matmul.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "gpu/device_buffer.hpp"
#include "gpu/event_timer.hpp"
#include "gpu/plan_log.hpp"

namespace sparq::gpu {
namespace {
constexpr size_t kMaxWorkspace = size_t{32} << 20;
constexpr size_t kMaxCachedShapes = 512;          // per layer: token counts x alignments
constexpr int kCandidates = 8;                    // heuristic results timed per shape
constexpr int kWarmupCalls = 2, kTimedCalls = 5;  // per candidate

size_t element_bytes(cudaDataType t) {
  switch (t) {
    case CUDA_R_8I:
      return 1;
    case CUDA_R_16F:
    case CUDA_R_16BF:
      return 2;
    default:  // CUDA_R_32I, CUDA_R_32F
      return 4;
  }
}

// The largest power of two (at most 256) the address is a multiple of.
uint32_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}
}  // namespace

struct LtMatmul::Shape {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  bool library_epilogue = false;  // made with the epilogue (bias / ReLU) of LtEpilogue
  ~Shape() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

LtMatmul::LtMatmul(int device, int64_t m, int64_t k, int64_t lda, int64_t ldb, LtTypes types,
                   LtEpilogue epilogue)
    : device_(device), m_(m), k_(k), lda_(lda), ldb_(ldb), types_(types), epilogue_(epilogue) {}

// A shape for which cuBLASLt has no algorithm with the epilogue is made without it; run() then
// says so and the caller applies bias and activation itself.
std::shared_ptr<const LtMatmul::Shape> LtMatmul::shape_for(const Key& key,
                                                           cudaStream_t stream) const {
  std::lock_guard lock(mutex_);
  if (auto it = shapes_.find(key); it != shapes_.end()) return it->second;
  std::shared_ptr<Shape> s;
  if (epilogue_.kind != CUBLASLT_EPILOGUE_DEFAULT) {
    try {
      s = make_shape(key, true, stream);
    } catch (const NotSupported&) {  // no algorithm with the epilogue
      s = nullptr;
    } catch (const CudaError&) {  // the epilogue attributes refused
      s = nullptr;
    }
  }
  if (!s) s = make_shape(key, false, stream);
  if (shapes_.size() >= kMaxCachedShapes) shapes_.clear();  // shared_ptr keeps running ones
  shapes_[key] = s;
  return s;
}

std::shared_ptr<LtMatmul::Shape> LtMatmul::make_shape(const Key& key, bool with_epilogue,
                                                      cudaStream_t stream) const {
  const auto [n, align_b, align_d] = key;
  auto s = std::make_shared<Shape>();
  s->library_epilogue = with_epilogue;
  const Context& ctx = Context::get(device_);
  check_cublas(cublasLtMatmulDescCreate(&s->desc, types_.compute, types_.scale),
               "cublasLtMatmulDescCreate");
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  check_cublas(cublasLtMatmulDescSetAttribute(s->desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                              sizeof transpose),
               "cublasLtMatmulDescSetAttribute(TRANSA)");
  check_cublas(
      cublasLtMatmulDescSetAttribute(s->desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none),
      "cublasLtMatmulDescSetAttribute(TRANSB)");
  if (with_epilogue)
    check_cublas(cublasLtMatmulDescSetAttribute(s->desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                &epilogue_.kind, sizeof epilogue_.kind),
                 "cublasLtMatmulDescSetAttribute(EPILOGUE)");
  if (with_epilogue && epilogue_.bias)
    check_cublas(cublasLtMatmulDescSetAttribute(s->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                &epilogue_.bias, sizeof epilogue_.bias),
                 "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
  check_cublas(cublasLtMatrixLayoutCreate(&s->a, types_.ab, static_cast<uint64_t>(k_),
                                          static_cast<uint64_t>(m_), lda_),
               "cublasLtMatrixLayoutCreate(A)");
  check_cublas(cublasLtMatrixLayoutCreate(&s->b, types_.ab, static_cast<uint64_t>(k_),
                                          static_cast<uint64_t>(n), ldb_),
               "cublasLtMatrixLayoutCreate(B)");
  check_cublas(cublasLtMatrixLayoutCreate(&s->d, types_.cd, static_cast<uint64_t>(m_),
                                          static_cast<uint64_t>(n), m_),
               "cublasLtMatrixLayoutCreate(D)");
  cublasLtMatmulPreference_t pref = nullptr;
  check_cublas(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t max_workspace = kMaxWorkspace;
  const uint32_t align_a = 256;  // the weight: a cudaMalloc'd buffer of its own
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d}};
  cublasStatus_t set = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &max_workspace, sizeof max_workspace);
  for (const auto& [attribute, bytes] : alignments)
    if (set == CUBLAS_STATUS_SUCCESS)
      set = cublasLtMatmulPreferenceSetAttribute(pref, attribute, &bytes, sizeof bytes);
  if (set != CUBLAS_STATUS_SUCCESS) {
    cublasLtMatmulPreferenceDestroy(pref);
    check_cublas(set, "cublasLtMatmulPreferenceSetAttribute");
  }
  cublasLtMatmulHeuristicResult_t results[kCandidates]{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
      ctx.blas_lt, s->desc, s->a, s->b, s->d, s->d, pref, kCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0)
    throw NotSupported("cuBLASLt has no algorithm for " + std::to_string(n) + " x " +
                       std::to_string(m_) + " x " + std::to_string(k_) +
                       " (tokens x out x in) in these types (status " +
                       std::to_string(static_cast<int>(status)) + ")");
  const cublasLtMatmulHeuristicResult_t& chosen = results[fastest(*s, n, results, found, stream)];
  s->algo = chosen.algo;
  s->workspace = chosen.workspaceSize;
  return s;
}

// The heuristic ranks its candidates by a model; for some shapes a later one is faster. So for
// products worth tuning (event_timer.hpp) each is timed on zero operands of the shape (calls queued
// back to back between events, the median of kTimedCalls after warm-up), as cusparseLtMatmulSearch
// tunes the 2:4 side of sparq's comparisons, and the fastest is kept. A candidate that fails to run
// is passed over; when none runs, the heuristic's first stands and the real call reports the error.
// Inside a graph capture the heuristic's first is kept untimed (and cached for the shape).
size_t LtMatmul::fastest(const Shape& s, int64_t n, const cublasLtMatmulHeuristicResult_t* results,
                         int count, cudaStream_t stream) const {
  if (count < 2 || !worth_tuning(m_, n, k_)) return 0;
  if (is_capturing(stream)) return 0;  // a graph capture allows no timing
  const Context& ctx = Context::get(device_);
  size_t workspace_bytes = 0;
  for (int i = 0; i < count; ++i)
    workspace_bytes = std::max(workspace_bytes, results[i].workspaceSize);
  const size_t ab = element_bytes(types_.ab);
  DeviceBuffer a(static_cast<size_t>(lda_ * m_) * ab), b(static_cast<size_t>(ldb_ * n) * ab),
      d(static_cast<size_t>(m_ * n) * element_bytes(types_.cd)), workspace(workspace_bytes);
  EventTimer timer(kTimedCalls);
  // On the timing stream: a non-blocking stream does not wait for the legacy one.
  check_cuda(cudaMemsetAsync(a.get(), 0, a.bytes(), timer.stream()), "cudaMemsetAsync");
  check_cuda(cudaMemsetAsync(b.get(), 0, b.bytes(), timer.stream()), "cudaMemsetAsync");
  const float one_f = 1.0f, zero_f = 0.0f;
  const int32_t one_i = 1, zero_i = 0;
  const bool int_scale = types_.scale == CUDA_R_32I;
  const void* alpha = int_scale ? static_cast<const void*>(&one_i) : &one_f;
  const void* beta = int_scale ? static_cast<const void*>(&zero_i) : &zero_f;
  size_t best = 0;
  float best_ms = 0;
  std::string timings;  // for SPARQ_LOG_PLANS
  for (int c = 0; c < count; ++c) {
    if (results[c].state != CUBLAS_STATUS_SUCCESS) continue;
    const std::optional<float> ms = timer.median_ms(kWarmupCalls, [&](cudaStream_t timing_stream) {
      return cublasLtMatmul(ctx.blas_lt, s.desc, alpha, a.get(), s.a, b.get(), s.b, beta, d.get(),
                            s.d, d.get(), s.d, &results[c].algo, workspace.get(),
                            results[c].workspaceSize, timing_stream) == CUBLAS_STATUS_SUCCESS;
    });
    if (ms && (best_ms == 0 || *ms < best_ms)) {
      best = static_cast<size_t>(c);
      best_ms = *ms;
    }
    if (plan_log_enabled()) {
      char t[32];
      std::snprintf(t, sizeof t, "%s%.4f", c ? ", " : "", ms ? double(*ms) : -1.0);
      timings += t;
    }
  }
  if (plan_log_enabled())
    plan_log("cuBLASLt " + std::to_string(m_) + " x " + std::to_string(k_) + " at " +
             std::to_string(n) + " tokens" + (s.library_epilogue ? " (epilogue)" : "") +
             ": candidate " + std::to_string(best) + " of " + std::to_string(count) +
             " fastest; median ms in the heuristic's order: " + timings);
  return best;
}

bool LtMatmul::prepare(int64_t n) const {
  return shape_for({n, 256, 256}, nullptr)->library_epilogue;
}

bool LtMatmul::run(const void* a, const void* b, int64_t n, const void* c, void* d,
                   const void* alpha, const void* beta, cudaStream_t stream) const {
  if (!c) c = d;
  const std::shared_ptr<const Shape> s =
      shape_for({n, alignment_of(b), std::min(alignment_of(c), alignment_of(d))}, stream);
  StreamScratch workspace(s->workspace, stream);
  check_cublas(cublasLtMatmul(Context::get(device_).blas_lt, s->desc, alpha, a, s->a, b, s->b, beta,
                              c, s->d, d, s->d, &s->algo, workspace.get(), s->workspace, stream),
               "cublasLtMatmul");
  return s->library_epilogue;
}

}  // namespace sparq::gpu
