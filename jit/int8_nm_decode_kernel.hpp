// The int8 2:4 decode kernel (sparse/int8_nm_decode_pack.hpp): a run of 16-row groups over 1..4
// tokens, y = act(float(sum x_u8 w - compensation) * x_scale * w_scale + bias) [+ residual]
// [-> int8], AVX-512 VNNI. Per window of 8 columns, the 16 position bytes become vpshufb indices
// (shifts spread each row's four 2-bit fields over its dword's bytes), which pick each
// row's four activations out of the window's 8 bytes; one vpdpbusd per token then does the
// row's four products. AVX-512 F/BW/VNNI only (no VBMI needed). Every group stores all 16 rows; the
// caller stages a short last group. Its reference twin is sparse::linear_int8 on the dense weight
// (the tests' oracle).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/int8_decode_kernel.hpp"

namespace sparq::jit {

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct NmDecodeArgs {
  const uint8_t* x;  // token 0's activations, u8 [windows * 8]
  int64_t x_stride;  // bytes between tokens of x
  const uint8_t* entries;
  const int64_t* group_begin;
  const int64_t* group_end;
  const float* x_scale;
  const float* w_scale;
  const float* bias;
  const int32_t* compensation;
  void* y;
  int64_t y_stride;
  const float* residual;
  int64_t residual_stride;
  float inv_y_scale;
};

class Int8NmDecodeKernel {
 public:
  virtual ~Int8NmDecodeKernel() = default;
  virtual void run(const NmDecodeArgs& args) const = 0;
  const DecodeKernelKey& key() const { return key_; }
  std::string name() const { return std::string("jit:int8-2:4-decode:") + isa_name(key_.isa); }

 protected:
  explicit Int8NmDecodeKernel(const DecodeKernelKey& key) : key_(key) {}

 private:
  DecodeKernelKey key_;
};

// Generated once per key; key.isa must be avx512_vnni and available here (NotSupported
// otherwise), tokens 1..4.
std::shared_ptr<const Int8NmDecodeKernel> int8_nm_decode_kernel(const DecodeKernelKey& key);

std::unique_ptr<Int8NmDecodeKernel> make_int8_nm_decode_avx512_vnni(const DecodeKernelKey& key);

}  // namespace sparq::jit
