#include "gpu/bsr_linear.hpp"

#include "gpu/bsr_mma.hpp"
#include "gpu/host_values.hpp"

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

}  // namespace

std::unique_ptr<GpuKernel> make_bsr_kernel(const sparse::Bsr& w, const float* bias, DType dtype,
                                           Activation act) {
  if (!bsr_mma_supports(w.block.rows, w.block.cols))
    throw NotSupported("cuda block-sparse kernel: block " + std::to_string(w.block.rows) + "x" +
                       std::to_string(w.block.cols) +
                       " is not supported (16x16, 16x32, 32x16 or 32x32)");
  return std::make_unique<BsrKernel>(w, bias, dtype, act);
}

}  // namespace sparq::gpu
