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

double max_error(const std::vector<uint16_t>& got, const std::vector<float>& want, DType dtype) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::fabs(double(from_device_type(got[i], dtype)) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
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
  const SparseLinear sparse_layer = SparseLinear::pack(w.data(), spec.out, spec.in, bias.data(), o);
  o.pattern = Pattern::dense();
  const SparseLinear dense_layer = SparseLinear::pack(w.data(), spec.out, spec.in, bias.data(), o);

  check(cudaSetDevice(device.index), "cudaSetDevice");
  std::vector<uint16_t> x16(x.size());
  for (size_t i = 0; i < x.size(); ++i) x16[i] = to_device_type(x[i], spec.dtype);
  const size_t y_count = static_cast<size_t>(spec.tokens * spec.out);
  Buffer dx(x16.size() * 2), dy_sparse(y_count * 2), dy_dense(y_count * 2);
  check(cudaMemcpy(dx.get(), x16.data(), x16.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  cudaStream_t stream = nullptr;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaEvent_t start = nullptr, stop = nullptr;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  auto time_us = [&](const SparseLinear& layer, void* y) {
    check(cudaEventRecord(start, stream), "cudaEventRecord");
    layer.forward_device(dx.get(), spec.tokens, y, nullptr, stream);
    check(cudaEventRecord(stop, stream), "cudaEventRecord");
    check(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    return 1e3 * double(ms);
  };
  for (int i = 0; i < warmup; ++i) {
    time_us(sparse_layer, dy_sparse.get());
    time_us(dense_layer, dy_dense.get());
  }
  std::vector<double> sparse_t, dense_t, ratio;
  const auto begin = std::chrono::steady_clock::now();
  while (static_cast<int>(ratio.size()) < min_reps ||
         std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() <
             min_seconds) {
    // Alternate which side runs first, so neither always follows the other.
    double s = 0, d = 0;
    if (ratio.size() % 2) {
      d = time_us(dense_layer, dy_dense.get());
      s = time_us(sparse_layer, dy_sparse.get());
    } else {
      s = time_us(sparse_layer, dy_sparse.get());
      d = time_us(dense_layer, dy_dense.get());
    }
    sparse_t.push_back(s);
    dense_t.push_back(d);
    ratio.push_back(d / s);
    if (ratio.size() >= 100000) break;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);

  std::vector<float> ref(y_count);
  const sparse::Epilogue epilogue{bias.data(), Activation::none, nullptr};
  sparse::linear_f32(x.data(), spec.tokens, w.data(), spec.out, spec.in, epilogue, ref.data());
  std::vector<uint16_t> ys(y_count), yd(y_count);
  check(cudaMemcpy(ys.data(), dy_sparse.get(), y_count * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");
  check(cudaMemcpy(yd.data(), dy_dense.get(), y_count * 2, cudaMemcpyDeviceToHost), "cudaMemcpy");

  CudaResult r;
  r.spec = spec;
  r.device = device;
  r.sparse_us = median(sparse_t);
  r.dense_us = median(dense_t);
  r.speedup = median(ratio);
  r.sparse_error = max_error(ys, ref, spec.dtype);
  r.dense_error = max_error(yd, ref, spec.dtype);
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
