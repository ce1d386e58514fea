#include "gpu/cuda_linear.hpp"

#include "gpu/context.hpp"
#include "gpu/elementwise.hpp"

namespace sparq::gpu {
namespace {

class CudaLinear final : public DeviceLinear {
 public:
  CudaLinear(int device, std::unique_ptr<GpuKernel> kernel, LinearInfo info, int64_t out,
             int64_t in, DType dtype)
      : device_(device),
        kernel_(std::move(kernel)),
        info_(std::move(info)),
        out_(out),
        in_(in),
        elem_(activation_elem(dtype)) {}

  LinearInfo info() const override { return info_; }

  void forward_host(const float* x, int64_t tokens, float* y,
                    const float* residual) const override {
    DeviceGuard guard(device_);
    const size_t x_count = static_cast<size_t>(tokens * in_);
    const size_t y_count = static_cast<size_t>(tokens * out_);
    // Stream-ordered pool memory (kept by the pool between calls), not cudaMalloc per call.
    StreamScratch staging(std::max(x_count, y_count) * sizeof(float), nullptr);
    StreamScratch x16(x_count * 2, nullptr), y16(y_count * 2, nullptr);
    StreamScratch residual16(residual ? y_count * 2 : 0, nullptr);
    check_cuda(cudaMemcpy(staging.get(), x, x_count * sizeof(float), cudaMemcpyHostToDevice),
               "cudaMemcpy x to device");
    convert_from_f32(staging.get<float>(), x16.get(), elem_, static_cast<int64_t>(x_count),
                     nullptr);
    if (residual) {
      check_cuda(
          cudaMemcpy(staging.get(), residual, y_count * sizeof(float), cudaMemcpyHostToDevice),
          "cudaMemcpy residual to device");
      convert_from_f32(staging.get<float>(), residual16.get(), elem_, static_cast<int64_t>(y_count),
                       nullptr);
    }
    kernel_->run(x16.get(), tokens, y16.get(), residual ? residual16.get() : nullptr, nullptr);
    convert_to_f32(y16.get(), elem_, staging.get<float>(), static_cast<int64_t>(y_count), nullptr);
    check_cuda(cudaMemcpy(y, staging.get(), y_count * sizeof(float), cudaMemcpyDeviceToHost),
               "cudaMemcpy y to host");
  }

  void forward_device(const void* x, int64_t tokens, void* y, const void* residual,
                      void* stream) const override {
    DeviceGuard guard(device_);
    kernel_->run(x, tokens, y, residual, static_cast<cudaStream_t>(stream));
  }

 private:
  int device_;
  std::unique_ptr<GpuKernel> kernel_;
  LinearInfo info_;
  int64_t out_, in_;
  Elem elem_;
};

}  // namespace

std::unique_ptr<DeviceLinear> make_cuda_linear(int device, std::unique_ptr<GpuKernel> kernel,
                                               LinearInfo info, int64_t out, int64_t in,
                                               DType dtype) {
  return std::make_unique<CudaLinear>(device, std::move(kernel), std::move(info), out, in, dtype);
}

}  // namespace sparq::gpu
