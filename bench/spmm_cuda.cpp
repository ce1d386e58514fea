#include "bench/spmm_cuda.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "bench/median.hpp"
#include "sparse/reference.hpp"

#if SPARQ_BENCH_CUDA
#include <cuda_runtime.h>

#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"
#endif

namespace sparq::bench {

#if SPARQ_BENCH_CUDA
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string("sparq-bench: ") + what + ": " +
                             cudaGetErrorString(status));
}

// Device memory for one buffer of 16-bit activations.
class Buffer {
 public:
  explicit Buffer(size_t bytes) { check(cudaMalloc(&data_, bytes), "cudaMalloc"); }
  ~Buffer() { cudaFree(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* get() const { return data_; }

 private:
  void* data_ = nullptr;
};

// The layer's activation type on the GPU: bf16 for bf16 layers, IEEE half otherwise.
uint16_t to_device_type(float v, DType dtype) {
  return dtype == DType::bf16 ? sparse::to_bf16(v) : sparse::to_f16(v);
}
float from_device_type(uint16_t v, DType dtype) {
  return dtype == DType::bf16 ? sparse::from_bf16(v) : sparse::from_f16(v);
}

// The tokens whose outputs are checked: all up to kCheckedTokens, else the first and last 8 (the
// tails of a tiling) and evenly spaced ones between. The fp32 oracle is a plain loop (~1 GMAC/s):
// every row of a 4096 x 4096 x 4096 case would cost it minutes per case.
constexpr int64_t kCheckedTokens = 32;
std::vector<int64_t> checked_tokens(int64_t tokens) {
  std::vector<int64_t> t;
  if (tokens <= kCheckedTokens) {
    for (int64_t i = 0; i < tokens; ++i) t.push_back(i);
    return t;
  }
  for (int64_t i = 0; i < 8; ++i) t.push_back(i);
  const int64_t between = kCheckedTokens - 16;
  for (int64_t i = 1; i <= between; ++i) t.push_back(8 + i * (tokens - 16) / (between + 1));
  for (int64_t i = tokens - 8; i < tokens; ++i) t.push_back(i);
  return t;
}

// max |got - want| / max |want| over the checked tokens' rows; want holds those rows in order.
double max_error(const std::vector<uint16_t>& got, const std::vector<float>& want,
                 const std::vector<int64_t>& rows, int64_t out, DType dtype) {
  double err = 0, scale = 0;
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t o = 0; o < out; ++o) {
      const double g = from_device_type(got[static_cast<size_t>(rows[r] * out + o)], dtype);
      const double w = want[r * static_cast<size_t>(out) + static_cast<size_t>(o)];
      err = std::max(err, std::fabs(g - w));
      scale = std::max(scale, std::fabs(w));
    }
  return err / std::max(scale, 1e-30);
}

}  // namespace

CudaResult run_cuda_case(const SpmmSpec& spec, const Device& device, int warmup, int min_reps,
                         double min_seconds) {
  const CudaStatus status = cuda_status();
  if (!status.usable) throw NotSupported("--device " + device.to_string() + ": " + status.message);
  const auto w = pruned_weight(spec);
  const auto x = normal(static_cast<size_t>(spec.tokens * spec.in), spec.seed + 1, 1.0f);
  const auto bias = normal(static_cast<size_t>(spec.out), spec.seed + 2, 0.1f);
  LinearOptions o;
  o.dtype = spec.dtype;
  o.pattern = spec.pattern;
  o.device = device;
  const float* b = spec.bias ? bias.data() : nullptr;
  const SparseLinear sparse_layer = SparseLinear::pack(w.data(), spec.out, spec.in, b, o);
  o.pattern = Pattern::dense();
  const SparseLinear dense_layer = SparseLinear::pack(w.data(), spec.out, spec.in, b, o);

  check(cudaSetDevice(device.index), "cudaSetDevice");
  std::vector<uint16_t> x16(x.size());
  for (size_t i = 0; i < x.size(); ++i) x16[i] = to_device_type(x[i], spec.dtype);
  const size_t y_count = static_cast<size_t>(spec.tokens * spec.out);
  Buffer dx(x16.size() * 2), dy_sparse(y_count * 2), dy_dense(y_count * 2);
  check(cudaMemcpy(dx.get(), x16.data(), x16.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  // Each round queues kPairs sparse/dense pairs (which side goes first alternates) with an event
  // before and after every call, and waits once at its end. The host stays ahead of the GPU, so an
  // interval is the call's GPU time, not the launch latency a synchronize before each call would
  // add to both sides (which pulls the ratio towards 1); where the host cannot keep up (tiny
  // shapes), the GPU waits inside the interval and that cost is counted, as it would be in use.
  constexpr int kPairs = 10;
  std::vector<cudaEvent_t> events(4 * kPairs);
  for (cudaEvent_t& e : events) check(cudaEventCreate(&e), "cudaEventCreate");
  std::vector<double> sparse_t, dense_t, ratio;
  auto round = [&](bool keep) {
    // An untimed pair first, so that no timed call starts on an idle GPU (it would absorb the
    // launch latency of its later kernels, and pair 0 would always charge it to the same side).
    sparse_layer.forward_device(dx.get(), spec.tokens, dy_sparse.get(), nullptr, stream);
    dense_layer.forward_device(dx.get(), spec.tokens, dy_dense.get(), nullptr, stream);
    for (int i = 0; i < kPairs; ++i) {
      const bool dense_first = i % 2 == 1;
      for (int side = 0; side < 2; ++side) {
        const bool dense = (side == 0) == dense_first;
        cudaEvent_t* ev = &events[static_cast<size_t>(4 * i + 2 * (dense ? 1 : 0))];
        check(cudaEventRecord(ev[0], stream), "cudaEventRecord");
        (dense ? dense_layer : sparse_layer)
            .forward_device(dx.get(), spec.tokens, (dense ? dy_dense : dy_sparse).get(), nullptr,
                            stream);
        check(cudaEventRecord(ev[1], stream), "cudaEventRecord");
      }
    }
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    if (!keep) return;
    for (int i = 0; i < kPairs; ++i) {
      float s_ms = 0, d_ms = 0;
      const cudaEvent_t* ev = &events[static_cast<size_t>(4 * i)];
      check(cudaEventElapsedTime(&s_ms, ev[0], ev[1]), "cudaEventElapsedTime");
      check(cudaEventElapsedTime(&d_ms, ev[2], ev[3]), "cudaEventElapsedTime");
      sparse_t.push_back(1e3 * double(s_ms));
      dense_t.push_back(1e3 * double(d_ms));
      ratio.push_back(double(d_ms) / double(s_ms));
    }
  };
  for (int i = 0; i < std::max(1, (warmup + kPairs - 1) / kPairs); ++i) round(false);
  const auto begin = std::chrono::steady_clock::now();
  while (static_cast<int>(ratio.size()) < min_reps ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() <
             min_seconds) {
    round(true);
    if (ratio.size() >= 100000) break;
  }
  for (cudaEvent_t e : events) cudaEventDestroy(e);
  cudaStreamDestroy(stream);

  const std::vector<int64_t> rows = checked_tokens(spec.tokens);
  std::vector<float> ref(rows.size() * static_cast<size_t>(spec.out));
  const sparse::Epilogue epilogue{b, Activation::none, nullptr};
  for (size_t r = 0; r < rows.size(); ++r)
    sparse::linear_f32(x.data() + rows[r] * spec.in, 1, w.data(), spec.out, spec.in, epilogue,
                       ref.data() + r * static_cast<size_t>(spec.out));
  std::vector<uint16_t> ys(y_count), yd(y_count);
  check(cudaMemcpy(ys.data(), dy_sparse.get(), y_count * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(yd.data(), dy_dense.get(), y_count * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");

  CudaResult r;
  r.spec = spec;
  r.device = device;
  r.sparse_us = median(sparse_t);
  r.dense_us = median(dense_t);
  r.speedup = median(ratio);
  r.sparse_error = max_error(ys, ref, rows, spec.out, spec.dtype);
  r.dense_error = max_error(yd, ref, rows, spec.out, spec.dtype);
  r.reps = static_cast<int>(ratio.size());
  r.kernel = sparse_layer.info().kernel;
  r.reason = sparse_layer.info().reason;
  r.dense_kernel = dense_layer.info().kernel;
  const auto& gpus = status.gpus;
  if (device.index < static_cast<int>(gpus.size())) r.gpu = gpus[device.index].name;
  return r;
}

#else

CudaResult run_cuda_case(const SpmmSpec&, const Device& device, int, int, double) {
  throw NotSupported("--device " + device.to_string() +
                     ": this sparq-bench was built without the CUDA backend "
                     "(configure with -DSPARQ_WITH_CUDA=ON on a machine with the CUDA toolkit)");
}

#endif

nlohmann::json to_json(const CudaResult& r) {
  const auto& s = r.spec;
  const double ops = 2.0 * double(s.tokens) * double(s.out) * double(s.in);
  return {{"device", r.device.to_string()},
          {"gpu", r.gpu},
          {"dtype", sparq::to_string(s.dtype)},
          {"pattern", s.pattern.to_string()},
          {"out", s.out},
          {"in", s.in},
          {"tokens", s.tokens},
          {"sparsity", s.sparsity},
          {"bias", s.bias},
          {"sparse_us", r.sparse_us},
          {"dense_us", r.dense_us},
          {"speedup", r.speedup},
          {"sparse_tflops", ops / r.sparse_us / 1e6},
          {"dense_tflops", ops / r.dense_us / 1e6},
          {"sparse_max_error", r.sparse_error},
          {"dense_max_error", r.dense_error},
          {"reps", r.reps},
          {"kernel", r.kernel},
          {"dense_kernel", r.dense_kernel},
          {"reason", r.reason}};
}

}  // namespace sparq::bench
