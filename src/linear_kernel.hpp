// What a CPU layer is made of: a description of the layer to pack (LayerDescription) and the
// packed kernels that run its calls (LinearKernel), as the kernel registry
// (src/kernel_registry.hpp) chooses and packs them. Each kernel family's layer class (e.g.
// Int8BlockLinear, NmTableLinear, DenseLinear) is wrapped as a LinearKernel there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/linear.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

// The structure a layer's weight is packed for, resolved from the pattern requested and the
// weight's statistics.
enum class WeightShape { dense, blocks, two_of_four };

// A layer to pack on the CPU: shape, dtype, pattern and epilogue (LinearOptions), the weight and
// its statistics, and the forms of it more than one family reads (made once).
struct LayerDescription {
  int64_t out = 0, in = 0;
  LinearOptions options;
  int threads = 1;  // resolved (options.threads 0: all cores)
  // The threads the layer runs on: `threads` of options.pool's arenas.
  PoolRef pool() const { return {threads, options.pool}; }
  const float* weight = nullptr;  // fp32 [out x in]; for bf16 layers rounded to bf16 values
  const float* bias = nullptr;    // [out] or null
  // Statistics: fraction of zeros, of all-zero 4x1 and 16x1 blocks.
  double sparsity = 0, block_sparsity = 0, sparsity_16x1 = 0;
  WeightShape shape = WeightShape::dense;
  std::string shape_reason;  // why the weight is packed for that structure
  // int8 layers: the weight quantized symmetrically per output row.
  std::vector<int8_t> w_s8;
  std::vector<float> w_scale;

  bool bf16() const { return options.dtype == DType::bf16; }
  bool int8() const { return options.dtype == DType::int8; }
};

// A packed kernel: the calls of a token range of one layer. fp32 / bf16 layers run the float
// entry, int8 layers quantize then run the quantized one; the others throw.
class LinearKernel {
 public:
  virtual ~LinearKernel() = default;
  virtual std::string name() const = 0;  // e.g. "jit:int8-4x1:avx512_vnni", "onednn:int8-dense"
  virtual std::string isa() const = 0;   // the ISA level it runs on, or "onednn"
  virtual int64_t packed_bytes() const = 0;

  // x fp32 [tokens x in] -> y fp32 [tokens x out] (bf16 when bf16_out) [+ residual].
  virtual void run(const float* x, int64_t tokens, void* y, const float* residual,
                   bool bf16_out) const;
  // int8: x quantized into this kernel's layout; whether q is in it; y fp32, s8 when y_scale > 0,
  // bf16 when bf16_out.
  virtual void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const;
  virtual bool reads(const QuantizedInput::Impl& q) const;
  virtual void run(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                   bool bf16_out) const;
};

}  // namespace sparq
