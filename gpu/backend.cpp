// libsparq_cuda.so's entry point: the device query and the choice of GPU kernel per layer.
#include "gpu/backend.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "gpu/bert_encoder_cuda.hpp"
#include "gpu/blocked_ell_sparse.hpp"
#include "gpu/bsr_linear.hpp"
#include "gpu/context.hpp"
#include "gpu/cuda_linear.hpp"
#include "gpu/dense_lt.hpp"
#include "gpu/device_buffer.hpp"
#include "gpu/event_timer.hpp"
#include "gpu/nm_lt.hpp"
#include "sparse/bsr.hpp"
#include "sparse/stats.hpp"
#include "src/kernel_thresholds.hpp"

namespace sparq::gpu {
namespace {

// Under `auto`, a 2:4 weight needs kMinSparsityFor2of4 zeros to be tried on the 2:4 kernel, and a
// block shape kMinBlockSparsityForSparse all-zero blocks to be tried on the block kernels (the
// CPU's thresholds, src/kernel_thresholds.hpp).
// `auto` and explicit block patterns time their candidates on this many tokens.
constexpr int64_t kTimingTokens = 128;

struct Candidate {
  std::unique_ptr<GpuKernel> kernel;
  std::string pattern;
  double block_sparsity = 0;
  double ms = 0;
};

// Median time of one call on kTimingTokens zero tokens, after warm-up (the first calls make plans
// and warm caches), queued back to back on a stream of its own (event_timer.hpp).
double time_kernel(const GpuKernel& k, int64_t in, int64_t out, int device) {
  DeviceGuard guard(device);
  DeviceBuffer x(static_cast<size_t>(kTimingTokens * in) * 2);
  DeviceBuffer y(static_cast<size_t>(kTimingTokens * out) * 2);
  EventTimer timer(10);
  // On the timing stream: a non-blocking stream does not wait for the legacy one.
  check_cuda(cudaMemsetAsync(x.get(), 0, x.bytes(), timer.stream()), "cudaMemsetAsync");
  return *timer.median_ms(3, [&](cudaStream_t stream) {
    k.run(x.get(), kTimingTokens, y.get(), nullptr, stream);  // throws on failure
    return true;
  });
}

class CudaBackend final : public Backend {
 public:
  CudaStatus status() const override {
    CudaStatus s;
    s.built = true;
    s.cusparselt = cusparselt_description();
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      s.message = std::string("no usable CUDA driver or GPU: cudaGetDeviceCount returned ") +
                  cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
      return s;
    }
    std::string names;
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp prop{};
      CudaGpu g;
      g.index = i;  // gpus[i] is device i, also when its properties cannot be read
      if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
        (void)cudaGetLastError();  // reported here, not blamed on a later call
        g.name = "device " + std::to_string(i) + " (properties unreadable)";
        s.gpus.push_back(g);
        continue;
      }
      g.name = prop.name;
      g.sm = prop.major * 10 + prop.minor;
      g.supported = g.sm >= 80;
      g.memory_bytes = static_cast<long long>(prop.totalGlobalMem);
      s.usable = s.usable || g.supported;
      names += (names.empty() ? "" : ", ") + g.name + " (sm_" + std::to_string(g.sm) +
               (memory_pools_supported(i) ? "" : ", no memory pools: slower scratch") + ")";
      s.gpus.push_back(g);
    }
    if (count == 0)
      s.message = "no CUDA GPU visible";
    else if (!s.usable)
      s.message = "no GPU of sm_80 or newer (found " + names + ")";
    else
      s.message = names + "; " + s.cusparselt;
    return s;
  }

  std::unique_ptr<DeviceLinear> pack(const float* weight, int64_t out, int64_t in,
                                     const float* bias, const LinearOptions& o) const override {
    const int device = o.device.index;
    DeviceGuard guard(device);
    const Context& ctx = Context::get(device);
    const std::span<const float> w(weight, static_cast<size_t>(out * in));
    LinearInfo info;
    info.isa = "cuda:sm_" + std::to_string(ctx.sm);
    info.sparsity = sparse::sparsity(w);
    const Pattern& p = o.pattern;
    std::vector<Candidate> candidates;
    std::string reason;
    std::string nm_missing;

    auto add_dense = [&] {
      candidates.push_back(
          {make_dense_kernel(device, weight, out, in, bias, o.dtype, o.activation), "dense"});
    };
    // A cuSPARSELt failure (an unsupported shape or architecture) leaves the layer to the other
    // candidates and says why, instead of failing the whole pack.
    auto add_nm = [&] {
      std::unique_ptr<GpuKernel> k;
      try {
        k = make_nm_kernel(device, weight, out, in, bias, o.dtype, o.activation, nm_missing);
      } catch (const CudaError& e) {
        nm_missing = std::string("cuSPARSELt failed: ") + e.what();
      }
      if (k) candidates.push_back({std::move(k), "2:4"});
      return static_cast<bool>(k);
    };
    auto add_blocks = [&](BlockShape shape) {
      const sparse::Bsr bsr = sparse::to_bsr(w, out, in, shape);
      const double bs = sparse::block_sparsity(w, out, in, shape);
      const std::string name = std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
      candidates.push_back({make_bsr_kernel(bsr, bias, o.dtype, o.activation), name, bs});
      if (shape.rows == shape.cols && o.dtype != DType::int8)  // cuSPARSE: no int8 Blocked-ELL
        candidates.push_back(
            {make_blocked_ell_kernel(device, bsr, bias, o.dtype, o.activation), name, bs});
    };

    switch (p.kind) {
      case Pattern::Kind::dense:
        add_dense();
        reason = "pattern dense requested";
        break;
      case Pattern::Kind::n_m: {
        if (auto v = sparse::first_n_m_violation(w, out, in, p.n, p.m))
          throw InvalidArgument("SparseLinear::pack: pattern " + p.to_string() +
                                " requested but the weight is not " + p.to_string() + ": " +
                                v->describe(p.n, p.m));
        if (!(p.n == 2 && p.m == 4) && !(p.n == 1 && p.m == 4))
          throw NotSupported("SparseLinear::pack: " + p.to_string() +
                             " on cuda: sparse tensor cores take 2:4 (a 1:4 weight is 2:4 too)");
        if (add_nm()) {
          reason = "pattern 2:4 requested: sparse tensor cores (cuSPARSELt)";
        } else {
          add_dense();
          reason = "pattern 2:4 requested but " + nm_missing;
        }
        break;
      }
      case Pattern::Kind::block: {
        const BlockShape shape = p.block;
        if (!(shape.rows == 16 || shape.rows == 32) || !(shape.cols == 16 || shape.cols == 32))
          throw NotSupported("SparseLinear::pack: block " + p.to_string() +
                             " on cuda: the tensor-core block kernels take 16x16, 16x32, 32x16 "
                             "or 32x32 blocks");
        add_blocks(shape);
        reason = "pattern " + p.to_string() + " requested";
        break;
      }
      case Pattern::Kind::automatic: {
        add_dense();
        reason = "auto";
        if (info.sparsity >= kMinSparsityFor2of4 && sparse::fits_n_m(w, out, in, 2, 4) && !add_nm())
          reason += " (2:4 not tried: " + nm_missing + ")";
        for (BlockShape shape : {BlockShape{32, 32}, BlockShape{16, 16}})
          if (sparse::block_sparsity(w, out, in, shape) >= kMinBlockSparsityForSparse) {
            add_blocks(shape);
            break;
          }
        break;
      }
    }

    size_t best = 0;
    if (candidates.size() > 1) {
      std::string timings;
      for (size_t i = 0; i < candidates.size(); ++i) {
        candidates[i].ms = time_kernel(*candidates[i].kernel, in, out, device);
        if (candidates[i].ms < candidates[best].ms) best = i;
        char t[32];
        std::snprintf(t, sizeof t, "%.3f ms", candidates[i].ms);
        timings += (i ? ", " : "") + candidates[i].kernel->name() + " " + t;
      }
      reason += ": fastest at " + std::to_string(kTimingTokens) + " tokens of " + timings;
    }
    // Uploads from pageable memory may still be in flight when cudaMemcpy returns; a caller's
    // non-blocking stream must not see a half-written weight.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (end of pack)");
    Candidate& chosen = candidates[best];
    info.kernel = chosen.kernel->name();
    info.pattern = chosen.pattern;
    info.block_sparsity = chosen.block_sparsity;
    info.packed_bytes = chosen.kernel->bytes();
    info.reason = reason;
    return make_cuda_linear(device, std::move(chosen.kernel), std::move(info), out, in, o.dtype);
  }

  std::unique_ptr<DeviceEncoder> build_encoder(
      const models::BertConfig& config, const models::BertWeights& weights,
      const models::EncoderOptions& options) const override {
    return make_cuda_bert_encoder(*this, config, weights, options);
  }
};

}  // namespace
}  // namespace sparq::gpu

extern "C" __attribute__((visibility("default"))) sparq::gpu::Backend* sparq_cuda_backend(int abi) {
  static sparq::gpu::CudaBackend backend;
  return abi == sparq::gpu::kBackendAbi ? &backend : nullptr;
}
