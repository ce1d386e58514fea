#include "gpu/nm_lt.hpp"

#if SPARQ_HAVE_CUSPARSELT

#include <cusparseLt.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "gpu/context.hpp"
#include "gpu/device_buffer.hpp"
#include "gpu/elementwise.hpp"
#include "gpu/event_timer.hpp"
#include "gpu/host_values.hpp"
#include "gpu/library_epilogue.hpp"
#include "gpu/plan_log.hpp"
#include "sparse/reference.hpp"

namespace sparq::gpu {
namespace {

// cuSPARSELt wants the structured matrix's rows, columns and leading dimension in multiples of
// 32 (int8) / 16 (fp16, bf16) and the dense ones in multiples of 16 / 8; 32 covers every case.
constexpr int64_t kAlign = 32;
constexpr size_t kMaxCachedPlans = 512;       // per layer: token counts x calling threads
constexpr int64_t kProbeTokens = 4 * kAlign;  // the token count planned and probed at pack time

// cuSPARSELt wants every matrix pointer 16-byte aligned.
bool is_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// cuSPARSELt's handle must not be shared between threads (a handle made on one thread and used
// on another fails with internal errors: PyTorch issue 113776, fixed there by a handle per thread),
// so each thread has its own per device, and the plans, which are made with a handle, are cached
// per handle (its serial number). Handles are never destroyed, as in PyTorch: cuSPARSELt does not
// say whether a plan refers to its handle, and plans of a finished thread may still be cached.
struct ThreadHandle {
  cusparseLtHandle_t handle{};
  uint64_t serial = 0;
};

std::map<int, const ThreadHandle*>& thread_handles() {
  thread_local std::map<int, const ThreadHandle*> handles;  // the handles themselves are leaked
  return handles;
}

// This thread's handle for `device`, or null when it has none yet.
const ThreadHandle* existing_thread_handle(int device) {
  const auto& handles = thread_handles();
  const auto it = handles.find(device);
  return it == handles.end() ? nullptr : it->second;
}

const ThreadHandle& thread_handle(int device) {
  if (const ThreadHandle* h = existing_thread_handle(device)) return *h;
  static std::atomic<uint64_t> next_serial{1};
  DeviceGuard guard(device);
  auto h = std::make_unique<ThreadHandle>();
  check_cusparse(cusparseLtInit(&h->handle), "cusparseLtInit");
  h->serial = next_serial++;
  const ThreadHandle* kept = h.release();  // intentionally never freed (see above)
  thread_handles()[device] = kept;
  return *kept;
}

const cusparseLtHandle_t& handle_for(int device) { return thread_handle(device).handle; }

// "TN" in column-major terms: A is the row-major weight [out x in] seen as [in x out] and
// transposed, B the row-major activations [tokens x in] seen as [in x tokens], D [out x tokens]
// column-major = the row-major output [tokens x out]. This is the layout cuSPARSELt's int8 kernels
// require (both operands contiguous along k), and fp16 / bf16 take it too.
struct Plan {
  cusparseLtMatDescriptor_t a{}, b{}, d{};
  cusparseLtMatmulDescriptor_t matmul{};
  cusparseLtMatmulAlgSelection_t alg{};
  cusparseLtMatmulPlan_t plan{};
  size_t workspace = 0;
  bool library_epilogue = false;  // bias / ReLU of fused_ set on the matmul descriptor
  bool a_made = false, b_made = false, d_made = false, alg_made = false, plan_made = false;
  ~Plan() {
    if (plan_made) cusparseLtMatmulPlanDestroy(&plan);
    if (alg_made) cusparseLtMatmulAlgSelectionDestroy(&alg);
    if (d_made) cusparseLtMatDescriptorDestroy(&d);
    if (b_made) cusparseLtMatDescriptorDestroy(&b);
    if (a_made) cusparseLtMatDescriptorDestroy(&a);
  }
};

class NmLtKernel final : public GpuKernel {
 public:
  NmLtKernel(int device, const float* weight, int64_t out, int64_t in, const float* bias,
             DType dtype, Activation act)
      : device_(device),
        out_(out),
        in_(in),
        out_padded_(round_up(out, kAlign)),
        in_padded_(round_up(in, kAlign)),
        int8_(dtype == DType::int8),
        elem_(activation_elem(dtype)),
        act_(act),
        fused_(int8_ ? LibraryEpilogue{} : library_epilogue(bias != nullptr, act)) {
    DeviceGuard guard(device);
    if (int8_) {
      ab_type_ = CUDA_R_8I;
      cd_type_ = CUDA_R_32I;
      compute_ = CUSPARSE_COMPUTE_32I;
    } else {
      ab_type_ = cd_type_ = elem_ == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF;
      compute_ = CUSPARSE_COMPUTE_32F;
    }
    upload_dense_weight(weight);
    if (bias) bias_ = upload(std::span(bias, static_cast<size_t>(out)));
    compress();
    if (fused_.bias || fused_.relu) fuse_epilogue(weight, bias);
    // One plan (with its algorithm search) at pack time, so that a shape or architecture
    // cuSPARSELt rejects fails here, where the backend can fall back, not in the first forward.
    plan_for(kProbeTokens);
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    const int64_t n = round_up(tokens, kAlign);
    const std::shared_ptr<const Plan> p = plan_for(n, stream);
    const size_t ab_bytes = int8_ ? 1 : 2, d_bytes = int8_ ? 4 : 2;
    // fp16 / bf16 operands already in cuSPARSELt's shape (aligned sizes and 16-byte pointers)
    // are used in place: no copy of x in, no unpadding pass out.
    const bool aligned_shape = !int8_ && tokens == n && in_ == in_padded_;
    const bool x_in_place = aligned_shape && is_aligned(x);
    const bool y_in_place = !int8_ && tokens == n && out_ == out_padded_ && is_aligned(y);
    // C shares D's descriptor, so the residual can be C only when D is y itself.
    const bool residual_in_matmul =
        residual && fused_.residual_as_c && y_in_place && is_aligned(residual);
    const bool bias_in_matmul = p->library_epilogue && fused_.bias;
    StreamScratch b(x_in_place ? 0 : static_cast<size_t>(n * in_padded_) * ab_bytes, stream);
    StreamScratch x_scale(int8_ ? static_cast<size_t>(tokens) * sizeof(float) : 0, stream);
    if (int8_) {
      if (n > tokens)
        check_cuda(cudaMemsetAsync(b.get<int8_t>() + tokens * in_padded_, 0,
                                   static_cast<size_t>((n - tokens) * in_padded_), stream),
                   "cudaMemsetAsync");
      quantize_rows(x, tokens, in_, b.get<int8_t>(), in_padded_, x_scale.get<float>(), stream);
    } else if (!x_in_place) {
      copy_rows_padded(x, in_, b.get(), in_padded_, tokens, in_, n, 2, stream);
    }
    const void* b_ptr = x_in_place ? x : b.get();
    StreamScratch d(y_in_place ? 0 : static_cast<size_t>(n * out_padded_) * d_bytes, stream);
    void* d_ptr = y_in_place ? y : d.get();
    StreamScratch workspace(p->workspace, stream);
    const float alpha = 1.0f, beta = residual_in_matmul ? 1.0f : 0.0f;
    const void* c_ptr = residual_in_matmul ? residual : d_ptr;
    cudaStream_t streams[] = {stream};
    check_cusparse(cusparseLtMatmul(&handle_for(device_), &p->plan, &alpha, compressed_.get(),
                                    b_ptr, &beta, c_ptr, d_ptr, workspace.get(), streams, 1),
                   "cusparseLtMatmul");
    if (int8_)
      int8_epilogue(static_cast<const int32_t*>(d_ptr), out_padded_, x_scale.get<float>(),
                    scale_.get<float>(), bias_.get<float>(), act_, residual, y, tokens, out_,
                    stream);
    else  // in place when D is y (a no-op when the library did the whole epilogue)
      finish_output(d_ptr, out_padded_, y, elem_, tokens, out_,
                    bias_in_matmul ? nullptr : bias_.get<float>(),
                    p->library_epilogue ? fused_.remaining(act_) : act_,
                    residual_in_matmul ? nullptr : residual, stream);
  }

  std::string name() const override {
    return std::string("cusparselt:") + (int8_ ? "int8" : elem_name(elem_)) + "-2:4" +
           fused_.suffix();
  }
  int64_t bytes() const override {
    return static_cast<int64_t>(compressed_.bytes() + scale_.bytes() + bias_.bytes() +
                                bias_library_.bytes());
  }

 private:
  void upload_dense_weight(const float* weight) {
    const size_t n = static_cast<size_t>(out_padded_ * in_padded_);
    if (int8_) {
      std::vector<int8_t> q(static_cast<size_t>(out_ * in_));
      std::vector<float> scale(static_cast<size_t>(out_));
      sparse::quantize_rows(weight, out_, in_, q.data(), scale.data());
      std::vector<int8_t> padded(n, 0);
      for (int64_t r = 0; r < out_; ++r)
        std::copy_n(q.begin() + r * in_, in_, padded.begin() + r * in_padded_);
      dense_ = upload(std::span<const int8_t>(padded));
      scale_ = upload(std::span<const float>(scale));
    } else {
      std::vector<float> padded(n, 0.0f);
      for (int64_t r = 0; r < out_; ++r)
        std::copy_n(weight + r * in_, in_, padded.begin() + r * in_padded_);
      dense_ = upload(std::span<const uint16_t>(to_16bit(padded, elem_)));
    }
  }

  void make_structured(cusparseLtMatDescriptor_t& a) const {
    check_cusparse(cusparseLtStructuredDescriptorInit(
                       &handle_for(device_), &a, in_padded_, out_padded_, in_padded_, 16, ab_type_,
                       CUSPARSE_ORDER_COL, CUSPARSELT_SPARSITY_50_PERCENT),
                   "cusparseLtStructuredDescriptorInit");
  }

  // The weight was checked 2:4 on the host; cuSPARSELt checks it again in its own layout (a
  // disagreement would mean sparq describes the matrix wrongly), then compresses it once.
  void compress() {
    const cusparseLtHandle_t& h = handle_for(device_);
    Plan a;  // holds the structured descriptor only
    make_structured(a.a);
    a.a_made = true;
    DeviceBuffer valid(sizeof(int));
    check_cusparse(cusparseLtSpMMAPruneCheck2(&h, &a.a, 1, CUSPARSE_OPERATION_TRANSPOSE,
                                              dense_.get(), valid.get<int>(), nullptr),
                   "cusparseLtSpMMAPruneCheck2");
    int invalid = 0;
    check_cuda(cudaMemcpy(&invalid, valid.get(), sizeof invalid, cudaMemcpyDeviceToHost),
               "cudaMemcpy prune check");
    if (invalid != 0)
      throw InvalidArgument(
          "cuSPARSELt rejects the weight as 2:4 along the input dimension (sparq's own check "
          "passed): report this as a sparq bug");
    size_t compressed_bytes = 0, buffer_bytes = 0;
    check_cusparse(cusparseLtSpMMACompressedSize2(&h, &a.a, &compressed_bytes, &buffer_bytes),
                   "cusparseLtSpMMACompressedSize2");
    compressed_ = DeviceBuffer(compressed_bytes);
    DeviceBuffer buffer(buffer_bytes);
    check_cusparse(cusparseLtSpMMACompress2(&h, &a.a, 1, CUSPARSE_OPERATION_TRANSPOSE, dense_.get(),
                                            compressed_.get(), buffer.get(), nullptr),
                   "cusparseLtSpMMACompress2");
    check_cuda(cudaDeviceSynchronize(), "cusparseLtSpMMACompress2 (synchronize)");
    dense_ = DeviceBuffer();  // the compressed copy is all the layer keeps
  }

  // Descriptors, the algorithm found by cusparseLtMatmulSearch, and the workspace size, once per
  // padded token count (and thread). A plan cuSPARSELt refuses with the fused epilogue is made
  // without it (the run then leaves bias and activation to sparq's pass). `stream`: the calling
  // run's, where a graph capture rules the search out.
  std::shared_ptr<const Plan> plan_for(int64_t n, cudaStream_t stream = nullptr) const {
    // Inside a capture not even a first handle is made (cusparseLtInit need not be capturable).
    if (is_capturing(stream)) {
      const ThreadHandle* mine = existing_thread_handle(device_);
      std::lock_guard lock(mutex_);
      if (mine)
        if (auto it = plans_.find({mine->serial, n}); it != plans_.end()) return it->second;
      throw NotSupported(
          "cuSPARSELt 2:4 layer: the first call at " + std::to_string(n) +
          " (padded) tokens on this thread searches for an algorithm, which cannot run while the "
          "stream is captured into a CUDA graph; call the layer once at this token count, on the "
          "capturing thread, before capturing");
    }
    const PlanKey key{thread_handle(device_).serial, n};
    std::lock_guard lock(mutex_);
    if (auto it = plans_.find(key); it != plans_.end()) return it->second;
    DeviceGuard guard(device_);
    std::shared_ptr<Plan> p;
    if (fused_.bias || fused_.relu) {
      try {
        p = make_plan(n, true);
      } catch (const CudaError&) {
        p = nullptr;
      }
    }
    if (!p) p = make_plan(n, false);
    if (plans_.size() >= kMaxCachedPlans) plans_.clear();  // shared_ptr keeps running ones
    plans_[key] = p;
    return p;
  }

  std::shared_ptr<Plan> make_plan(int64_t n, bool with_epilogue) const {
    const cusparseLtHandle_t& h = handle_for(device_);
    auto p = std::make_shared<Plan>();
    make_structured(p->a);
    p->a_made = true;
    check_cusparse(cusparseLtDenseDescriptorInit(&h, &p->b, in_padded_, n, in_padded_, 16, ab_type_,
                                                 CUSPARSE_ORDER_COL),
                   "cusparseLtDenseDescriptorInit(B)");
    p->b_made = true;
    check_cusparse(cusparseLtDenseDescriptorInit(&h, &p->d, out_padded_, n, out_padded_, 16,
                                                 cd_type_, CUSPARSE_ORDER_COL),
                   "cusparseLtDenseDescriptorInit(D)");
    p->d_made = true;
    check_cusparse(cusparseLtMatmulDescriptorInit(&h, &p->matmul, CUSPARSE_OPERATION_TRANSPOSE,
                                                  CUSPARSE_OPERATION_NON_TRANSPOSE, &p->a, &p->b,
                                                  &p->d, &p->d, compute_),
                   "cusparseLtMatmulDescriptorInit");
    if (with_epilogue) set_epilogue(p->matmul);
    p->library_epilogue = with_epilogue;
    check_cusparse(
        cusparseLtMatmulAlgSelectionInit(&h, &p->alg, &p->matmul, CUSPARSELT_MATMUL_ALG_DEFAULT),
        "cusparseLtMatmulAlgSelectionInit");
    p->alg_made = true;
    check_cusparse(cusparseLtMatmulPlanInit(&h, &p->plan, &p->matmul, &p->alg),
                   "cusparseLtMatmulPlanInit");
    p->plan_made = true;
    check_cusparse(cusparseLtMatmulGetWorkspace(&h, &p->plan, &p->workspace),
                   "cusparseLtMatmulGetWorkspace");
    if (worth_tuning(out_padded_, n, in_padded_)) search(*p, n);  // else cuSPARSELt's default
    return p;
  }

  // The bias's element type in cuSPARSELt's epilogue has changed between versions (NVIDIA's
  // samples pass fp32 with 16-bit compute and D's type with fp32 compute), and a wrong guess gives
  // wrong numbers, not an error. So each candidate is run on a probe input whose exact output is
  // known (probe_matches), and the first that gives it is kept; when none does, or cuSPARSELt
  // refuses the epilogue, sparq's pass adds the bias and activates.
  void fuse_epilogue(const float* weight, const float* bias) {
    const LibraryEpilogue wanted = fused_;
    const int attempts = wanted.bias ? 2 : 1;
    for (int attempt = 0; attempt < attempts; ++attempt) {
      const bool bias_fp32 = attempt == 1;
      if (wanted.bias) bias_library_ = upload_library_bias(bias, bias_fp32);
      plans_.clear();
      try {
        const std::shared_ptr<const Plan> p = plan_for(kProbeTokens);
        if (!p->library_epilogue) break;  // refused outright: the bias type is not the question
        if (probe_matches(*p, weight, bias, bias_fp32)) return;
      } catch (const CudaError&) {
        // a failing probe run: try the next bias type, then sparq's pass
      }
    }
    fused_ = LibraryEpilogue{.residual_as_c = wanted.residual_as_c};
    bias_library_ = DeviceBuffer();
    plans_.clear();
  }

  // [out_padded] bias values in D's type or in fp32; the buffer is sized for fp32 either way, so
  // a library reading the other type stays inside it.
  DeviceBuffer upload_library_bias(const float* bias, bool as_fp32) const {
    std::vector<float> padded(static_cast<size_t>(out_padded_), 0.0f);
    std::copy_n(bias, out_, padded.begin());
    if (as_fp32) return upload(std::span<const float>(padded));
    std::vector<uint16_t> bits = to_16bit(padded, elem_);
    bits.resize(bits.size() * 2, 0);
    return upload(std::span<const uint16_t>(bits));
  }

  float round_to_elem(float v) const {
    return elem_ == Elem::f16 ? sparse::from_f16(sparse::to_f16(v))
                              : sparse::from_bf16(sparse::to_bf16(v));
  }

  // Every token of the probe is the unit vector of input column 0, so output o must be exactly
  // act(w[o][0] + bias[o]) in D's type: one exact product, the bias as the candidate stores it,
  // ReLU where fused. Checks that the bias is read in the right type and per output row, and that
  // ReLU applies. D starts as a finite sentinel, so an element left unwritten fails too.
  bool probe_matches(const Plan& p, const float* weight, const float* bias, bool bias_fp32) const {
    const cusparseLtHandle_t& h = handle_for(device_);
    const int64_t n = kProbeTokens;
    std::vector<float> x(static_cast<size_t>(n * in_padded_), 0.0f);
    for (int64_t t = 0; t < n; ++t) x[static_cast<size_t>(t * in_padded_)] = 1.0f;
    const DeviceBuffer b = upload(std::span<const uint16_t>(to_16bit(x, elem_)));
    DeviceBuffer d(static_cast<size_t>(n * out_padded_) * 2);
    check_cuda(cudaMemset(d.get(), 0x5a, d.bytes()), "cudaMemset");
    DeviceBuffer workspace(p.workspace);
    const float alpha = 1.0f, beta = 0.0f;
    check_cusparse(cusparseLtMatmul(&h, &p.plan, &alpha, compressed_.get(), b.get(), &beta, d.get(),
                                    d.get(), workspace.get(), nullptr, 0),
                   "cusparseLtMatmul (epilogue probe)");
    std::vector<uint16_t> got(static_cast<size_t>(n * out_padded_));
    check_cuda(cudaMemcpy(got.data(), d.get(), d.bytes(), cudaMemcpyDeviceToHost),
               "cudaMemcpy (epilogue probe)");
    std::vector<float> want(static_cast<size_t>(out_padded_), 0.0f);
    for (int64_t o = 0; o < out_; ++o) {
      const float b_o = !fused_.bias ? 0.0f : bias_fp32 ? bias[o] : round_to_elem(bias[o]);
      const float v = round_to_elem(weight[o * in_]) + b_o;
      want[static_cast<size_t>(o)] = round_to_elem(fused_.relu && v < 0.0f ? 0.0f : v);
    }
    const auto value = [&](uint16_t bits) {
      return elem_ == Elem::f16 ? sparse::from_f16(bits) : sparse::from_bf16(bits);
    };
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < out_padded_; ++o)
        if (value(got[static_cast<size_t>(t * out_padded_ + o)]) != want[static_cast<size_t>(o)])
          return false;
    return true;
  }

  // ReLU and the bias (one value per row of D) into cuSPARSELt's epilogue.
  void set_epilogue(cusparseLtMatmulDescriptor_t& matmul) const {
    const cusparseLtHandle_t& h = handle_for(device_);
    if (fused_.relu) {
      const int on = 1;
      check_cusparse(cusparseLtMatmulDescSetAttribute(
                         &h, &matmul, CUSPARSELT_MATMUL_ACTIVATION_RELU, &on, sizeof on),
                     "cusparseLtMatmulDescSetAttribute(ACTIVATION_RELU)");
    }
    if (fused_.bias) {
      const void* bias = bias_library_.get();
      check_cusparse(cusparseLtMatmulDescSetAttribute(&h, &matmul, CUSPARSELT_MATMUL_BIAS_POINTER,
                                                      &bias, sizeof bias),
                     "cusparseLtMatmulDescSetAttribute(BIAS_POINTER)");
    }
  }

  // Times every algorithm on scratch operands (blocking) and keeps the fastest in the plan; the
  // plan is then made again for it and the workspace re-queried, as NVIDIA's samples do.
  void search(Plan& p, int64_t n) const {
    const cusparseLtHandle_t& h = handle_for(device_);
    // The legacy stream waits for blocking streams, not for a caller's non-blocking one, whose
    // queued work would otherwise share the GPU with the timed candidates.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (before cusparseLtMatmulSearch)");
    const size_t ab_bytes = int8_ ? 1 : 2, d_bytes = int8_ ? 4 : 2;
    DeviceBuffer b(static_cast<size_t>(n * in_padded_) * ab_bytes);
    DeviceBuffer d(static_cast<size_t>(n * out_padded_) * d_bytes);
    check_cuda(cudaMemset(b.get(), 0, b.bytes()), "cudaMemset");
    DeviceBuffer workspace(p.workspace);
    const float alpha = 1.0f, beta = 0.0f;
    check_cusparse(cusparseLtMatmulSearch(&h, &p.plan, &alpha, compressed_.get(), b.get(), &beta,
                                          d.get(), d.get(), workspace.get(), nullptr, 0),
                   "cusparseLtMatmulSearch");
    check_cusparse(cusparseLtMatmulPlanDestroy(&p.plan), "cusparseLtMatmulPlanDestroy");
    p.plan_made = false;
    check_cusparse(cusparseLtMatmulPlanInit(&h, &p.plan, &p.matmul, &p.alg),
                   "cusparseLtMatmulPlanInit");
    p.plan_made = true;
    check_cusparse(cusparseLtMatmulGetWorkspace(&h, &p.plan, &p.workspace),
                   "cusparseLtMatmulGetWorkspace");
    if (plan_log_enabled()) log_search(p, n);
  }

  void log_search(const Plan& p, int64_t n) const {
    const cusparseLtHandle_t& h = handle_for(device_);
    int config = -1, max_config = -1, split_k = -1;
    cusparseLtMatmulAlgGetAttribute(&h, &p.alg, CUSPARSELT_MATMUL_ALG_CONFIG_ID, &config,
                                    sizeof config);
    cusparseLtMatmulAlgGetAttribute(&h, &p.alg, CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID, &max_config,
                                    sizeof max_config);
    cusparseLtMatmulAlgGetAttribute(&h, &p.alg, CUSPARSELT_MATMUL_SPLIT_K, &split_k,
                                    sizeof split_k);
    plan_log(name() + " " + std::to_string(out_padded_) + " x " + std::to_string(in_padded_) +
             " at " + std::to_string(n) + " tokens: searched config " + std::to_string(config) +
             " of 0.." + std::to_string(max_config) + ", split-k " + std::to_string(split_k) +
             ", workspace " + std::to_string(p.workspace) + " bytes" +
             (p.library_epilogue ? ", library epilogue" : ""));
  }

  int device_;
  int64_t out_, in_, out_padded_, in_padded_;
  bool int8_;
  Elem elem_;
  Activation act_;
  LibraryEpilogue fused_;  // none for int8: its scales come before the bias, in sparq's epilogue
  cudaDataType ab_type_{}, cd_type_{};
  cusparseComputeType compute_{};
  DeviceBuffer dense_, compressed_, scale_;
  DeviceBuffer bias_;          // fp32 [out] for sparq's pass (int8, or a plan without the epilogue)
  DeviceBuffer bias_library_;  // [out_padded] for cuSPARSELt's epilogue (fuse_epilogue)
  mutable std::mutex mutex_;
  using PlanKey = std::pair<uint64_t, int64_t>;  // the thread's handle serial, padded tokens
  mutable std::map<PlanKey, std::shared_ptr<Plan>> plans_;
};

}  // namespace

std::unique_ptr<GpuKernel> make_nm_kernel(int device, const float* weight, int64_t out, int64_t in,
                                          const float* bias, DType dtype, Activation act,
                                          std::string& why) {
  why.clear();
  return std::make_unique<NmLtKernel>(device, weight, out, in, bias, dtype, act);
}

std::string cusparselt_description() {
  int major = 0, minor = 0, patch = 0;
  cusparseLtGetProperty(MAJOR_VERSION, &major);
  cusparseLtGetProperty(MINOR_VERSION, &minor);
  cusparseLtGetProperty(PATCH_LEVEL, &patch);
  return "cuSPARSELt " + std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(patch);
}

}  // namespace sparq::gpu

#else  // built without cuSPARSELt

namespace sparq::gpu {

constexpr const char* kNoCusparselt =
    "cuSPARSELt was not found when sparq was built, so 2:4 layers on CUDA run dense (install the "
    "PyPI wheel nvidia-cusparselt-cu13 with scripts/cuda-deps.sh or set SPARQ_CUSPARSELT_ROOT, "
    "then rebuild)";

std::unique_ptr<GpuKernel> make_nm_kernel(int, const float*, int64_t, int64_t, const float*, DType,
                                          Activation, std::string& why) {
  why = kNoCusparselt;
  return nullptr;
}

std::string cusparselt_description() { return kNoCusparselt; }

}  // namespace sparq::gpu

#endif
