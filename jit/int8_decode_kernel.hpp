// The int8 decode kernel: a run of 16-row groups of the decode layout (sparse/int8_decode_pack.hpp)
// over 1..4 tokens, y = act(float(sum x_q w_q) * x_scale * w_scale + bias) [+ residual]
// [-> int8]. Decode moves every weight byte once per token step and does little arithmetic per
// byte, so the layout puts output rows in the vector lanes: each y row segment is contiguous and
// the weights are read once for all the call's tokens.
//
// Variants: avx512_vnni (JIT: per pair of columns, one vpmovsxbw of the 32 weight bytes and per
// token one (x[c0], x[c1]) broadcast and one vpdpwssd), avx2 (JIT: 2 vpmovsxbw, and per token 2
// vpmaddwd + vpaddd), both exact, and reference (portable C++).
// Every variant stores all 16 rows of every group; the caller stages a short last group.
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
struct DecodeArgs {
  const int16_t* x;            // token 0's activations, s16 [in]
  int64_t x_stride;            // bytes between tokens of x
  const uint8_t* entries;      // all entries of the layer; group_begin indexes them
  const int64_t* group_begin;  // first group's entry index; group g ends where g + 1 begins
  const int64_t* group_end;    // &group_begin[number of groups to run]
  const float* x_scale;        // one per token
  const float* w_scale;        // row scales, from the first group's row 0 on
  const float* bias;           // row biases, likewise
  void* y;                     // output of (token 0, row 0 of the first group)
  int64_t y_stride;            // bytes between tokens of y
  const float* residual;       // like y, fp32; read when the kernel was built with residual
  int64_t residual_stride;     // bytes between tokens of residual
  float inv_y_scale;           // int8 output: 1 / y_scale
};

struct DecodeKernelKey {
  Isa isa = Isa::avx2;
  int tokens = 1;  // 1..sparse::kDecodeMaxTokens
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  bool int8_output = false;
  // Software prefetch of the weight stream (AVX-512 kernels; the layers take decode_prefetch).
  bool prefetch = false;
  // The epilogue: dequantize, bias, activation, operand, store (int8 or fp32).
  PostOpList post_ops() const {
    return PostOpList::make(true, activation, operand,
                            int8_output ? TileOutput::s8 : TileOutput::f32);
  }
  auto operator<=>(const DecodeKernelKey&) const = default;
};

class Int8DecodeKernel {
 public:
  virtual ~Int8DecodeKernel() = default;
  virtual void run(const DecodeArgs& args) const = 0;
  const DecodeKernelKey& key() const { return key_; }
  std::string name() const;  // e.g. "jit:int8-16x1-decode:avx2"

 protected:
  explicit Int8DecodeKernel(const DecodeKernelKey& key) : key_(key) {}

 private:
  DecodeKernelKey key_;
};

// Generates (or finds in the process-wide cache) the kernel for a key. Throws NotSupported if the
// key's ISA is not available here.
std::shared_ptr<const Int8DecodeKernel> int8_decode_kernel(const DecodeKernelKey& key);

std::unique_ptr<Int8DecodeKernel> make_int8_decode_avx512_vnni(const DecodeKernelKey& key);
std::unique_ptr<Int8DecodeKernel> make_int8_decode_avx2(const DecodeKernelKey& key);
std::unique_ptr<Int8DecodeKernel> make_int8_decode_reference(const DecodeKernelKey& key);

}  // namespace sparq::jit
