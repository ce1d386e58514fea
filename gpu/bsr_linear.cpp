#include "gpu/bsr_linear.hpp"

#include <algorithm>
#include <vector>

#include "gpu/bsr_mma.hpp"
#include "gpu/context.hpp"
#include "gpu/host_values.hpp"
#include "sparse/reference.hpp"

namespace sparq::gpu {
namespace {

// A BSR weight on the device: its structure, its values in the kernel's element type and layout,
// and the fp32 bias, with the descriptor the kernels take.
struct DeviceBsr {
  DeviceBuffer row_ptr, col_idx, values, bias;
  BsrDevice desc;

  template <typename V>
  DeviceBsr(const sparse::Bsr& w, std::span<const V> kernel_values, const float* bias_host)
      : row_ptr(upload(std::span(w.row_ptr))),
        col_idx(upload(std::span(w.col_idx))),
        values(upload(kernel_values)),
        bias(bias_host ? upload(std::span(bias_host, static_cast<size_t>(w.rows)))
                       : DeviceBuffer()) {
    desc.out = w.rows;
    desc.in = w.cols;
    desc.block_rows_of = w.block.rows;
    desc.block_cols_of = w.block.cols;
    desc.block_rows = w.block_rows();
    desc.row_ptr = row_ptr.get<int64_t>();
    desc.col_idx = col_idx.get<int32_t>();
    desc.values = values.get();
  }
  size_t bytes() const { return row_ptr.bytes() + col_idx.bytes() + values.bytes() + bias.bytes(); }
};

std::string kernel_name(const char* type, const sparse::Bsr& w) {
  return std::string("cuda:bsr-mma-") + type + "-" + std::to_string(w.block.rows) + "x" +
         std::to_string(w.block.cols);
}

class BsrKernel final : public GpuKernel {
 public:
  BsrKernel(const sparse::Bsr& w, const float* bias, DType dtype, Activation act)
      : elem_(activation_elem(dtype)),
        act_(act),
        w_(w, std::span<const uint16_t>(to_16bit(w.values, elem_)), bias),
        name_(kernel_name(elem_name(elem_), w)) {}

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    bsr_mma_forward(w_.desc, elem_, x, tokens, w_.bias.get<float>(), act_, residual, y, stream);
  }
  std::string name() const override { return name_; }
  int64_t bytes() const override { return static_cast<int64_t>(w_.bytes()); }

 private:
  Elem elem_;
  Activation act_;
  DeviceBsr w_;
  std::string name_;
};

}  // namespace

Int8Panels quantize_to_panels(const sparse::Bsr& w) {
  const int64_t out = w.rows, in = w.cols, R = w.block.rows, C = w.block.cols;
  const std::vector<float> dense = sparse::to_dense(w);
  std::vector<int8_t> q(dense.size());
  Int8Panels p{std::vector<int8_t>(w.values.size(), 0),
               std::vector<float>(static_cast<size_t>(out))};
  sparse::quantize_rows(dense.data(), out, in, q.data(), p.scale.data());
  for (int64_t br = 0; br < w.block_rows(); ++br)
    for (int64_t b = w.row_ptr[static_cast<size_t>(br)]; b < w.row_ptr[static_cast<size_t>(br + 1)];
         ++b)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t row = br * R + r, col = int64_t{w.col_idx[static_cast<size_t>(b)]} * C + c;
          if (row >= out || col >= in) continue;  // edge blocks: zero padding
          p.panels[static_cast<size_t>(b * R * C + (c / 16) * R * 16 + r * 16 + c % 16)] =
              q[static_cast<size_t>(row * in + col)];
        }
  return p;
}

namespace {

// int8: the fp16 activations quantized per token on the GPU into k-planes, then one kernel for
// product, scales and epilogue.
class BsrInt8Kernel final : public GpuKernel {
 public:
  BsrInt8Kernel(const sparse::Bsr& w, const float* bias, Activation act)
      : BsrInt8Kernel(w, quantize_to_panels(w), bias, act) {}

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    const size_t elem_bytes = 2;  // fp16 activations, residual and output
    const int64_t in = w_.desc.in, out = w_.desc.out;
    for (int64_t t0 = 0; t0 < tokens; t0 += bsr_int8_max_tokens()) {
      const int64_t n = std::min(bsr_int8_max_tokens(), tokens - t0);
      const int64_t plane_tokens = bsr_int8_plane_tokens(n);
      StreamScratch q(static_cast<size_t>(plane_tokens * in_padded_), stream);
      StreamScratch x_scale(static_cast<size_t>(n) * sizeof(float), stream);
      const void* xc = static_cast<const char*>(x) + t0 * in * elem_bytes;
      quantize_rows_planar(xc, n, in, q.get<int8_t>(), in_padded_, plane_tokens,
                           x_scale.get<float>(), stream);
      const void* rc =
          residual ? static_cast<const char*>(residual) + t0 * out * elem_bytes : nullptr;
      void* yc = static_cast<char*>(y) + t0 * out * elem_bytes;
      bsr_int8_forward(w_.desc, scale_.get<float>(), q.get<int8_t>(), in_padded_, plane_tokens,
                       x_scale.get<float>(), n, w_.bias.get<float>(), act_, rc, yc, stream);
    }
  }
  std::string name() const override { return name_; }
  int64_t bytes() const override { return static_cast<int64_t>(w_.bytes() + scale_.bytes()); }

 private:
  BsrInt8Kernel(const sparse::Bsr& w, const Int8Panels& q, const float* bias, Activation act)
      : in_padded_(round_up(w.cols, 32)),
        act_(act),
        w_(w, std::span<const int8_t>(q.panels), bias),
        scale_(upload(std::span<const float>(q.scale))),
        name_(kernel_name("int8", w)) {}

  int64_t in_padded_;
  Activation act_;
  DeviceBsr w_;
  DeviceBuffer scale_;
  std::string name_;
};

}  // namespace

std::unique_ptr<GpuKernel> make_bsr_kernel(const sparse::Bsr& w, const float* bias, DType dtype,
                                           Activation act) {
  if (!bsr_mma_supports(w.block.rows, w.block.cols))
    throw NotSupported("cuda block-sparse kernel: block " + std::to_string(w.block.rows) + "x" +
                       std::to_string(w.block.cols) +
                       " is not supported (16x16, 16x32, 32x16 or 32x32)");
  if (dtype == DType::int8) return std::make_unique<BsrInt8Kernel>(w, bias, act);
  return std::make_unique<BsrKernel>(w, bias, dtype, act);
}

}  // namespace sparq::gpu
