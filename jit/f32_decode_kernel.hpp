// The f32/bf16 decode kernel: a run of 16-row groups of the f32 decode layout
// (sparse/f32_decode_pack.hpp) over 1..4 tokens, y = act(sum x w + bias) [+ residual], fp32 out.
// Output rows are the vector lanes (no transpose), each weight is read once for all the call's
// tokens, and bf16 weights are widened in registers (vpmovzxwd + vpslld 16), so a bf16 layer moves
// half the bytes of fp32. Variants: avx2 (JIT) and reference (portable C++).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "jit/post_ops.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct F32DecodeArgs {
  const float* x;              // token 0's activations, fp32 [in]
  int64_t x_stride;            // bytes between tokens of x
  const uint8_t* entries;      // all entries of the layer; group_begin indexes them
  const int64_t* group_begin;  // first group's entry index; group g ends where g + 1 begins
  const int64_t* group_end;    // &group_begin[number of groups to run]
  const float* bias;           // row biases, from the first group's row 0 on
  float* y;                    // output of (token 0, row 0 of the first group)
  int64_t y_stride;            // bytes between tokens of y
  const float* residual;       // like y; read when the kernel was built with residual
  int64_t residual_stride;     // bytes between tokens of residual
};

struct F32DecodeKey {
  Isa isa = Isa::avx2;
  int tokens = 1;  // 1..4
  bool bf16 = false;
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  bool two_of_four = false;         // the 2:4 layout (AVX-512 and the portable twin only)
  // Software prefetch of the weight stream (AVX-512 kernels; the layers take decode_prefetch).
  bool prefetch = false;
  // The epilogue: bias, activation, operand, store (fp32).
  PostOpList post_ops() const {
    return PostOpList::make(false, activation, operand, TileOutput::f32);
  }
  auto operator<=>(const F32DecodeKey&) const = default;
};

class F32DecodeKernel {
 public:
  virtual ~F32DecodeKernel() = default;
  virtual void run(const F32DecodeArgs& args) const = 0;
  const F32DecodeKey& key() const { return key_; }
  std::string name() const;  // e.g. "jit:bf16-16x1-decode:avx2"

 protected:
  explicit F32DecodeKernel(const F32DecodeKey& key) : key_(key) {}

 private:
  F32DecodeKey key_;
};

// From the process-wide cache (avx512 and avx512_vnni: the AVX-512F variant). NotSupported if the
// ISA is missing here, InvalidArgument for a token count outside 1..4.
std::shared_ptr<const F32DecodeKernel> f32_decode_kernel(const F32DecodeKey& key);

std::unique_ptr<F32DecodeKernel> make_f32_decode_avx512(const F32DecodeKey& key);  // AVX-512F
std::unique_ptr<F32DecodeKernel> make_f32_decode_avx2(const F32DecodeKey& key);
std::unique_ptr<F32DecodeKernel> make_f32_decode_reference(const F32DecodeKey& key);

}  // namespace sparq::jit
