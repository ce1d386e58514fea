#include "gpu/bsr_linear.hpp"

#include <algorithm>
#include <vector>

#include "gpu/bsr_mma.hpp"
#include "gpu/context.hpp"
#include "gpu/host_values.hpp"
#include "sparse/reference.hpp"

namespace sparq::gpu {
namespace {

class BsrKernel final : public GpuKernel {
 public:
  BsrKernel(const sparse::Bsr& w, const float* bias, DType dtype, Activation act)
      : elem_(activation_elem(dtype)), act_(act) {
    const std::vector<uint16_t> values = to_16bit(w.values, elem_);
    row_ptr_ = upload(std::span(w.row_ptr));
    col_idx_ = upload(std::span(w.col_idx));
    values_ = upload(std::span(values));
    if (bias) bias_ = upload(std::span(bias, static_cast<size_t>(w.rows)));
    desc_.out = w.rows;
    desc_.in = w.cols;
    desc_.block_rows_of = w.block.rows;
    desc_.block_cols_of = w.block.cols;
    desc_.block_rows = w.block_rows();
    desc_.row_ptr = row_ptr_.get<int64_t>();
    desc_.col_idx = col_idx_.get<int32_t>();
    desc_.values = values_.get();
    name_ = std::string("cuda:bsr-mma-") + elem_name(elem_) + "-" + std::to_string(w.block.rows) +
            "x" + std::to_string(w.block.cols);
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    bsr_mma_forward(desc_, elem_, x, tokens, bias_.get<float>(), act_, residual, y, stream);
  }
  std::string name() const override { return name_; }
  int64_t bytes() const override {
    return static_cast<int64_t>(row_ptr_.bytes() + col_idx_.bytes() + values_.bytes() +
                                bias_.bytes());
  }

 private:
  Elem elem_;
  Activation act_;
  DeviceBuffer row_ptr_, col_idx_, values_, bias_;
  BsrDevice desc_;
  std::string name_;
};

// int8: the weight quantized per output channel exactly as the CPU layers do (over the whole row),
// stored in the kernel's k-panels; the fp16 activations quantized per token on the GPU into
// k-planes, then one kernel for product, scales and epilogue.
class BsrInt8Kernel final : public GpuKernel {
 public:
  BsrInt8Kernel(const sparse::Bsr& w, const float* bias, Activation act)
      : in_(w.cols), in_padded_(round_up(w.cols, 32)), act_(act) {
    const int64_t out = w.rows, in = w.cols, R = w.block.rows, C = w.block.cols;
    const std::vector<float> dense = sparse::to_dense(w);
    std::vector<int8_t> q(dense.size());
    std::vector<float> scale(static_cast<size_t>(out));
    sparse::quantize_rows(dense.data(), out, in, q.data(), scale.data());
    std::vector<int8_t> panels(w.values.size(), 0);
    for (int64_t br = 0; br < w.block_rows(); ++br)
      for (int64_t b = w.row_ptr[static_cast<size_t>(br)];
           b < w.row_ptr[static_cast<size_t>(br + 1)]; ++b)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t row = br * R + r,
                          col = int64_t{w.col_idx[static_cast<size_t>(b)]} * C + c;
            if (row >= out || col >= in) continue;  // edge blocks: zero padding
            panels[static_cast<size_t>(b * R * C + (c / 16) * R * 16 + r * 16 + c % 16)] =
                q[static_cast<size_t>(row * in + col)];
          }
    row_ptr_ = upload(std::span(w.row_ptr));
    col_idx_ = upload(std::span(w.col_idx));
    values_ = upload(std::span<const int8_t>(panels));
    scale_ = upload(std::span<const float>(scale));
    if (bias) bias_ = upload(std::span(bias, static_cast<size_t>(out)));
    desc_.out = out;
    desc_.in = in;
    desc_.block_rows_of = w.block.rows;
    desc_.block_cols_of = w.block.cols;
    desc_.block_rows = w.block_rows();
    desc_.row_ptr = row_ptr_.get<int64_t>();
    desc_.col_idx = col_idx_.get<int32_t>();
    desc_.values = values_.get();
    name_ = "cuda:bsr-mma-int8-" + std::to_string(R) + "x" + std::to_string(C);
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    const size_t elem_bytes = 2;  // fp16 activations, residual and output
    for (int64_t t0 = 0; t0 < tokens; t0 += bsr_int8_max_tokens()) {
      const int64_t n = std::min(bsr_int8_max_tokens(), tokens - t0);
      const int64_t plane_tokens = bsr_int8_plane_tokens(n);
      StreamScratch q(static_cast<size_t>(plane_tokens * in_padded_), stream);
      StreamScratch x_scale(static_cast<size_t>(n) * sizeof(float), stream);
      const void* xc = static_cast<const char*>(x) + t0 * in_ * elem_bytes;
      quantize_rows_planar(xc, n, in_, q.get<int8_t>(), in_padded_, plane_tokens,
                           x_scale.get<float>(), stream);
      const void* rc =
          residual ? static_cast<const char*>(residual) + t0 * desc_.out * elem_bytes : nullptr;
      void* yc = static_cast<char*>(y) + t0 * desc_.out * elem_bytes;
      bsr_int8_forward(desc_, scale_.get<float>(), q.get<int8_t>(), in_padded_, plane_tokens,
                       x_scale.get<float>(), n, bias_.get<float>(), act_, rc, yc, stream);
    }
  }
  std::string name() const override { return name_; }
  int64_t bytes() const override {
    return static_cast<int64_t>(row_ptr_.bytes() + col_idx_.bytes() + values_.bytes() +
                                scale_.bytes() + bias_.bytes());
  }

 private:
  int64_t in_, in_padded_;
  Activation act_;
  DeviceBuffer row_ptr_, col_idx_, values_, scale_, bias_;
  BsrDevice desc_;
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
