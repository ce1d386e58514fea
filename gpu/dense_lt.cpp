#include "gpu/dense_lt.hpp"

#include <algorithm>
#include <vector>

#include "gpu/host_values.hpp"
#include "gpu/library_epilogue.hpp"
#include "gpu/lt_matmul.hpp"
#include "sparse/reference.hpp"

namespace sparq::gpu {
namespace {

cublasLtEpilogue_t lt_epilogue_kind(LibraryEpilogue fused) {
  if (fused.bias) return fused.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  return fused.relu ? CUBLASLT_EPILOGUE_RELU : CUBLASLT_EPILOGUE_DEFAULT;
}

// Bias and ReLU run in cuBLASLt's epilogue, the residual enters as C where library_epilogue allows;
// sparq's pass applies only what is left (GELU, SiLU, a residual after an activation).
class DenseHalfKernel final : public GpuKernel {
 public:
  DenseHalfKernel(int device, const float* weight, int64_t out, int64_t in, const float* bias,
                  DType dtype, Activation act)
      : out_(out),
        elem_(activation_elem(dtype)),
        act_(act),
        fused_(library_epilogue(bias != nullptr, act)),
        weight_(upload(std::span<const uint16_t>(
            to_16bit(std::span(weight, static_cast<size_t>(out * in)), elem_)))),
        bias_(bias ? upload(std::span<const uint16_t>(
                         to_16bit(std::span(bias, static_cast<size_t>(out)), elem_)))
                   : DeviceBuffer()),
        bias_f32_(bias ? upload(std::span(bias, static_cast<size_t>(out))) : DeviceBuffer()),
        matmul_(device, out, in, in, in,
                {elem_ == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF,
                 elem_ == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F},
                {lt_epilogue_kind(fused_), bias_.get()}) {
    // The name reports what the pack-time plan does (128 tokens, aligned buffers); a shape
    // cuBLASLt has no algorithm with the epilogue for runs it in sparq's pass instead.
    named_epilogue_ = lt_epilogue_kind(fused_) != CUBLASLT_EPILOGUE_DEFAULT && matmul_.prepare(128);
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    const bool residual_in_matmul = residual && fused_.residual_as_c;
    const float one = 1.0f, zero = 0.0f;
    const bool epilogue_done =
        matmul_.run(weight_.get(), x, tokens, residual_in_matmul ? residual : nullptr, y, &one,
                    residual_in_matmul ? &one : &zero, stream);
    // Without the library's epilogue the residual (if it went in as C) precedes the bias, which
    // is the same sum: residual_as_c implies no activation.
    finish_output(y, out_, y, elem_, tokens, out_,
                  epilogue_done && fused_.bias ? nullptr : bias_f32_.get<float>(),
                  epilogue_done ? fused_.remaining(act_) : act_,
                  residual_in_matmul ? nullptr : residual, stream);
  }
  std::string name() const override {
    return std::string("cublaslt:") + elem_name(elem_) + "-dense" +
           (named_epilogue_ ? fused_.suffix() : "");
  }
  int64_t bytes() const override {
    return static_cast<int64_t>(weight_.bytes() + bias_.bytes() + bias_f32_.bytes());
  }

 private:
  int64_t out_;
  Elem elem_;
  Activation act_;
  LibraryEpilogue fused_;  // what cuBLASLt is asked to apply (per shape, run() says if it did)
  bool named_epilogue_ = false;  // the pack-time shape took it
  DeviceBuffer weight_;
  DeviceBuffer bias_;      // in the output type, as cuBLASLt's epilogue reads it
  DeviceBuffer bias_f32_;  // for sparq's pass when a shape has no algorithm with the epilogue
  LtMatmul matmul_;
};

// Rows of the int8 operands are padded to 16 bytes and the output to 16 channels, the alignment
// cuBLASLt's integer tensor-core kernels want.
class DenseInt8Kernel final : public GpuKernel {
 public:
  DenseInt8Kernel(int device, const float* weight, int64_t out, int64_t in, const float* bias,
                  Activation act)
      : out_(out),
        in_(in),
        out_padded_(round_up(out, 16)),
        in_padded_(round_up(in, 16)),
        act_(act),
        matmul_(device, out_padded_, in_padded_, in_padded_, in_padded_,
                {CUDA_R_8I, CUDA_R_32I, CUBLAS_COMPUTE_32I, CUDA_R_32I}) {
    std::vector<int8_t> q(static_cast<size_t>(out * in));
    std::vector<float> scale(static_cast<size_t>(out));
    sparse::quantize_rows(weight, out, in, q.data(), scale.data());
    std::vector<int8_t> padded(static_cast<size_t>(out_padded_ * in_padded_), 0);
    for (int64_t r = 0; r < out; ++r)
      std::copy_n(q.begin() + r * in, in, padded.begin() + r * in_padded_);
    weight_ = upload(std::span<const int8_t>(padded));
    scale_ = upload(std::span<const float>(scale));
    if (bias) bias_ = upload(std::span(bias, static_cast<size_t>(out)));
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    StreamScratch q(static_cast<size_t>(tokens * in_padded_), stream);
    StreamScratch x_scale(static_cast<size_t>(tokens) * sizeof(float), stream);
    StreamScratch acc(static_cast<size_t>(tokens * out_padded_) * sizeof(int32_t), stream);
    quantize_rows(x, tokens, in_, q.get<int8_t>(), in_padded_, x_scale.get<float>(), stream);
    const int32_t one = 1, zero = 0;
    matmul_.run(weight_.get(), q.get(), tokens, nullptr, acc.get(), &one, &zero, stream);
    int8_epilogue(acc.get<int32_t>(), out_padded_, x_scale.get<float>(), scale_.get<float>(),
                  bias_.get<float>(), act_, residual, y, tokens, out_, stream);
  }
  std::string name() const override { return "cublaslt:int8-dense"; }
  int64_t bytes() const override {
    return static_cast<int64_t>(weight_.bytes() + scale_.bytes() + bias_.bytes());
  }

 private:
  int64_t out_, in_, out_padded_, in_padded_;
  Activation act_;
  LtMatmul matmul_;
  DeviceBuffer weight_, scale_, bias_;
};

}  // namespace

std::unique_ptr<GpuKernel> make_dense_kernel(int device, const float* weight, int64_t out,
                                             int64_t in, const float* bias, DType dtype,
                                             Activation act) {
  if (dtype == DType::int8)
    return std::make_unique<DenseInt8Kernel>(device, weight, out, in, bias, act);
  return std::make_unique<DenseHalfKernel>(device, weight, out, in, bias, dtype, act);
}

}  // namespace sparq::gpu
