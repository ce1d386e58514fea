#include "gpu/blocked_ell_sparse.hpp"

#include <cstdint>

#include "gpu/context.hpp"
#include "gpu/host_values.hpp"
#include "sparse/blocked_ell.hpp"

namespace sparq::gpu {
namespace {

// cuSPARSE: C [out_p x tokens] = A (Blocked-ELL [out_p x in_p]) * B [in_p x tokens], B and C
// column-major, i.e. the row-major activations and output.
class BlockedEllKernel final : public GpuKernel {
 public:
  BlockedEllKernel(int device, const sparse::Bsr& w, const float* bias, DType dtype, Activation act)
      : device_(device), elem_(activation_elem(dtype)), act_(act) {
    DeviceGuard guard(device);
    const sparse::BlockedEll e = sparse::to_blocked_ell(w);
    out_ = e.logical_rows;
    in_ = e.logical_cols;
    out_padded_ = e.rows;
    in_padded_ = e.cols;
    block_ = e.block;
    ell_cols_ = e.ell_cols();
    col_idx_ = upload(std::span(e.col_idx));
    values_ = upload(std::span<const uint16_t>(to_16bit(e.values, elem_)));
    if (bias) bias_ = upload(std::span(bias, static_cast<size_t>(out_)));
    check_cusparse(cusparseCreateBlockedEll(&a_, out_padded_, in_padded_, block_, ell_cols_,
                                            col_idx_.get(), values_.get(), CUSPARSE_INDEX_32I,
                                            CUSPARSE_INDEX_BASE_ZERO, value_type()),
                   "cusparseCreateBlockedEll");
  }
  ~BlockedEllKernel() override {
    if (a_) cusparseDestroySpMat(a_);
  }

  void run(const void* x, int64_t tokens, void* y, const void* residual,
           cudaStream_t stream) const override {
    Context& ctx = Context::get(device_);
    // cuSPARSE's Blocked-ELL SpMM reads B in vectors: a padded or unaligned x is copied first.
    const bool x_in_place = in_padded_ == in_ && reinterpret_cast<uintptr_t>(x) % 16 == 0;
    StreamScratch xb(x_in_place ? 0 : static_cast<size_t>(tokens * in_padded_) * 2, stream);
    const void* b_values = x;
    if (!x_in_place) {
      copy_rows_padded(x, in_, xb.get(), in_padded_, tokens, in_, tokens, 2, stream);
      b_values = xb.get();
    }
    StreamScratch c(static_cast<size_t>(tokens * out_padded_) * 2, stream);
    cusparseDnMatDescr_t b = nullptr, cm = nullptr;
    const float alpha = 1.0f, beta = 0.0f;
    try {
      check_cusparse(
          cusparseCreateDnMat(&b, in_padded_, tokens, in_padded_, const_cast<void*>(b_values),
                              value_type(), CUSPARSE_ORDER_COL),
          "cusparseCreateDnMat(B)");
      check_cusparse(cusparseCreateDnMat(&cm, out_padded_, tokens, out_padded_, c.get(),
                                         value_type(), CUSPARSE_ORDER_COL),
                     "cusparseCreateDnMat(C)");
      const Context::StreamLock on_stream(ctx, stream);
      size_t bytes = 0;
      check_cusparse(
          cusparseSpMM_bufferSize(ctx.sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                  CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a_, b, &beta, cm,
                                  CUDA_R_32F, CUSPARSE_SPMM_BLOCKED_ELL_ALG1, &bytes),
          "cusparseSpMM_bufferSize");
      StreamScratch workspace(bytes, stream);
      check_cusparse(cusparseSpMM(ctx.sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                  CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a_, b, &beta, cm,
                                  CUDA_R_32F, CUSPARSE_SPMM_BLOCKED_ELL_ALG1, workspace.get()),
                     "cusparseSpMM (Blocked-ELL)");
    } catch (...) {
      if (cm) cusparseDestroyDnMat(cm);
      if (b) cusparseDestroyDnMat(b);
      throw;
    }
    cusparseDestroyDnMat(cm);
    cusparseDestroyDnMat(b);
    finish_output(c.get(), out_padded_, y, elem_, tokens, out_, bias_.get<float>(), act_, residual,
                  stream);
  }

  std::string name() const override {
    return std::string("cusparse:blocked-ell-") + elem_name(elem_) + "-" + std::to_string(block_) +
           "x" + std::to_string(block_);
  }
  int64_t bytes() const override {
    return static_cast<int64_t>(col_idx_.bytes() + values_.bytes() + bias_.bytes());
  }

 private:
  cudaDataType value_type() const { return elem_ == Elem::f16 ? CUDA_R_16F : CUDA_R_16BF; }

  int device_;
  Elem elem_;
  Activation act_;
  int64_t out_ = 0, in_ = 0, out_padded_ = 0, in_padded_ = 0, block_ = 0, ell_cols_ = 0;
  DeviceBuffer col_idx_, values_, bias_;
  cusparseSpMatDescr_t a_ = nullptr;
};

}  // namespace

std::unique_ptr<GpuKernel> make_blocked_ell_kernel(int device, const sparse::Bsr& w,
                                                   const float* bias, DType dtype, Activation act) {
  if (dtype == DType::int8)
    throw NotSupported("cuda Blocked-ELL: int8 is not supported (f16 or bf16)");
  return std::make_unique<BlockedEllKernel>(device, w, bias, dtype, act);
}

}  // namespace sparq::gpu
