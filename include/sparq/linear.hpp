// SparseLinear: a pruned nn.Linear packed once for the fastest kernel sparq has, run many times.
//
//   sparq::LinearOptions opts;                       // dtype, pattern, activation, threads
//   auto lin = sparq::SparseLinear::pack(w, out, in, bias, opts);
//   lin.forward(x, tokens, y);                       // y = act(x * w^T + bias)
//   std::cout << lin.info().kernel;                  // which kernel runs, and why
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sparq/device.hpp"
#include "sparq/error.hpp"
#include "sparq/types.hpp"

namespace sparq {

struct LinearOptions {
  DType dtype = DType::int8;
  Pattern pattern = Pattern::automatic();
  // The epilogue every kernel fuses, in this order: (int8) dequantize, bias, `activation`, the
  // forward call's tensor operand joined by `operand` (added: a residual; multiplied: a gated
  // unit), then the conversion to the forward overload's output type (fp32, bf16, int8).
  Activation activation = Activation::none;
  OperandOp operand = OperandOp::add;
  int threads = 0;  // 0: all cores
  // Activation sparsity in decode steps (calls of at most 4 tokens): input entries with
  // |x| < input_threshold are zeroed before the product, as TEAL's magnitude thresholding does
  // (sparq-eval --calibrate finds thresholds that zero a chosen fraction). int8 layers on AVX-512
  // VNNI and bf16 layers on AVX-512 then read only the weight columns of the non-zero inputs
  // (kernels "jit:int8-sparse-input-decode", "jit:bf16-sparse-input-decode"); elsewhere the
  // zeroing applies and the usual kernel runs. 0 (default): off, every input is used as given.
  // Calls of more than 4 tokens never threshold.
  float input_threshold = 0;
  // The fraction of a decode step's inputs the threshold is expected to zero (e.g. the target of
  // the calibration that found it; 0: unknown). The sparse-input kernels run only where this is
  // at least 0.7 (bf16 layers of 1024 rows or more, and int8 layers of 2048 rows or more with
  // an unpruned weight: 0.5): below it, reading the columns of the
  // non-zero inputs cost as much memory time as reading every column, and the layer's usual
  // decode kernel on the zeroed inputs was faster (measured on AMD Zen 4;
  // docs/benchmarks-avx512.md).
  float expected_input_sparsity = 0;
  // Device::cuda(N): the layer is packed on GPU N (dtypes f16, bf16, int8; see forward_device).
  Device device = Device::cpu();
  // The thread pool: layers of one pool and thread count share its threads. Independent model
  // instances run side by side (each on its own cores) use different pools, so that their calls
  // do not queue on one pool.
  int pool = 0;
};

struct LinearInfo {
  std::string kernel;  // e.g. "jit:int8-4x1:avx2" or "onednn:int8-dense"
  // The kernel of calls with at most 4 tokens (decode steps) where it differs from `kernel`,
  // e.g. "jit:int8-16x1-decode:avx2"; empty otherwise.
  std::string decode_kernel;
  std::string reason;         // why this kernel was chosen
  std::string pattern;        // the pattern the weight was packed for, e.g. "4x1"
  std::string isa;            // the ISA the kernel runs on
  double sparsity = 0;        // fraction of zero weights (fp32 zeros of the weight given to pack)
  double block_sparsity = 0;  // fraction of all-zero blocks of the packed block shape
  int64_t packed_bytes = 0;   // bytes held by the packed weight (values, indices, scales, bias)
  int64_t decode_packed_bytes = 0;  // the part of packed_bytes decode_kernel reads (0: none)
  int threads = 0;
  // The same, structured: the kernel family of `kernel` and `decode_kernel` without their
  // implementation prefix and ISA suffix (e.g. "int8-4x1", "int8-16x1-decode", "int8-dense"; empty
  // when decode_kernel is), and the layer's dtype.
  std::string family, decode_family;
  DType dtype = DType::int8;
};

// Activations quantized for an int8 layer, in the layout its kernel reads. Produced by
// SparseLinear::quantize_input; reusable across calls (it keeps its buffers).
class QuantizedInput {
 public:
  QuantizedInput();
  ~QuantizedInput();
  QuantizedInput(QuantizedInput&&) noexcept;
  QuantizedInput& operator=(QuantizedInput&&) noexcept;
  int64_t tokens() const;

  struct Impl;
  Impl& impl() { return *checked(); }
  const Impl& impl() const { return *checked(); }

 private:
  Impl* checked() const {
    if (!impl_) throw InvalidArgument("QuantizedInput: this object was moved from");
    return impl_.get();
  }
  std::unique_ptr<Impl> impl_;
};

class SparseLinear {
 public:
  // weight: fp32 row-major [out x in] whose zeros are the pruned entries; bias: fp32 [out] or null.
  static SparseLinear pack(const float* weight, int64_t out, int64_t in, const float* bias,
                           const LinearOptions& options);

  // x: fp32 row-major [tokens x in]; y: fp32 row-major [tokens x out]. If residual is given
  // (fp32 [tokens x out]) it joins after the activation: y = act(x w^T + b) + residual, or with
  // LinearOptions::operand multiply y = act(x w^T + b) * residual.
  // int8 layers quantize x dynamically, symmetric, one scale per token (max |x| / 127).
  void forward(const float* x, int64_t tokens, float* y, const float* residual = nullptr) const;

  // forward may be called from several threads at once on one SparseLinear.

  // Lower-level int8 entry: quantize once, then run (the benchmark times the second step alone).
  void quantize_input(const float* x, int64_t tokens, QuantizedInput& q) const;
  void forward(const QuantizedInput& q, float* y, const float* residual = nullptr) const;
  // bf16 output (y as bf16 bit patterns, rounded to nearest even from the fp32 result). The sparse
  // kernels convert each tile as it leaves L1; dense oneDNN layers convert afterwards.
  void forward_bf16(const float* x, int64_t tokens, uint16_t* y,
                    const float* residual = nullptr) const;
  void forward_bf16(const QuantizedInput& q, uint16_t* y, const float* residual = nullptr) const;
  // Requantized int8 output: y_q = saturate(round_half_even(y / y_scale)), y_q in [-128, 127].
  void forward(const QuantizedInput& q, int8_t* y, float y_scale,
               const float* residual = nullptr) const;

  // Layers packed for Device::cuda. x, y and residual are device pointers (cudaMalloc'd on the
  // layer's GPU), row-major, in the layer's activation type: IEEE half for f16 and int8 layers
  // (int8 layers quantize x per token on the GPU), bf16 for bf16 layers; residual must not be y.
  // stream is a cudaStream_t (null: the default stream); the call is asynchronous on it, except
  // the first call at a new token count (rounded up to 32 for 2:4 layers; per calling thread for
  // them), which plans and may time the library's algorithms and so blocks. Such a first call
  // cannot be captured into a CUDA graph (2:4 layers throw NotSupported saying so; dense layers
  // then keep cuBLASLt's untimed first choice): call each token count once before capturing.
  // forward(const float*...) also works on CUDA layers with host fp32 pointers: it copies,
  // converts and waits (convenient, not fast).
  void forward_device(const void* x, int64_t tokens, void* y, const void* residual = nullptr,
                      void* stream = nullptr) const;
  Device device() const;

  LinearInfo info() const;
  int64_t out_features() const;
  int64_t in_features() const;

  SparseLinear(SparseLinear&&) noexcept;
  SparseLinear& operator=(SparseLinear&&) noexcept;
  ~SparseLinear();

  struct Impl;

 private:
  explicit SparseLinear(std::unique_ptr<Impl> impl);
  const Impl& impl() const;  // throws InvalidArgument on a moved-from object
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq
