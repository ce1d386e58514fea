// The int8 2:4 prefill kernel (sparse/int8_nm_prefill_pack.hpp), AVX-512 VNNI: a run of 16-row
// groups over a tile of 1..8 tokens, y = act(float(sum x_u8 w - compensation) * x_scale * w_scale +
// bias) [+ residual] [-> int8]. Rows are the vector lanes, so one vpdpbusd does four kept
// products for 16 rows of one token: half the vpdpbusd of a dense GEMM. Groups run in pairs; per
// window of 8 columns each group's indices and weights are loaded once, and per token one
// vpbroadcastq of the token's 8 activations feeds both groups' vpshufb (which picks each row's
// four) and vpdpbusd. On Zen 4 a vpshufb and a vpdpbusd share a pipe (2.7 pairs per ns against
// 3.7 vpdpbusd alone), which bounds the kernel at ~1.6x a dense GEMM's rate.
//
// Activations: u8 = q + 128, [windows][call tokens][8] (each window's bytes of every token
// together, so a tile's 8 tokens are one cache line). Every group stores all 16 rows; the caller
// stages a short last group. Its reference twin is sparse::linear_int8 on the dense weight (the
// tests' oracle).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "jit/post_ops.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

inline constexpr int kNmPrefillTileTokens = 8;

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct NmPrefillArgs {
  const uint8_t* x;         // the tile's first token in window 0
  int64_t x_window_stride;  // bytes between windows of x: 8 * the call's tokens
  const uint8_t* entries;   // the first group's entries; the run's groups follow it
  int64_t windows;
  int64_t groups;               // groups to run, >= 1
  const float* x_scale;         // the tile's token scales
  const float* w_scale;         // row scales, from the first group's row 0 on
  const float* bias;            // row biases, likewise
  const int32_t* compensation;  // row compensations, likewise
  void* y;                      // output of (tile token 0, row 0 of the first group)
  int64_t y_stride;             // bytes between tokens of y
  const float* residual;        // like y, fp32; read when the kernel was built with residual
  int64_t residual_stride;      // bytes between tokens of residual
  float inv_y_scale;            // int8 output: 1 / y_scale
};

struct NmPrefillKey {
  int tokens = kNmPrefillTileTokens;  // 1..kNmPrefillTileTokens
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  bool int8_output = false;
  // The epilogue: dequantize, bias, activation, operand, store (int8 or fp32).
  PostOpList post_ops() const {
    return PostOpList::make(true, activation, operand,
                            int8_output ? TileOutput::s8 : TileOutput::f32);
  }
  auto operator<=>(const NmPrefillKey&) const = default;
};

class Int8NmPrefillKernel {
 public:
  virtual ~Int8NmPrefillKernel() = default;
  virtual void run(const NmPrefillArgs& args) const = 0;
  const NmPrefillKey& key() const { return key_; }
  static std::string name() { return "jit:int8-2:4:avx512_vnni"; }

 protected:
  explicit Int8NmPrefillKernel(const NmPrefillKey& key) : key_(key) {}

 private:
  NmPrefillKey key_;
};

// Generated once per key. NotSupported where neither this CPU nor an installed code runner has
// AVX-512 VNNI; InvalidArgument for tokens outside 1..kNmPrefillTileTokens.
std::shared_ptr<const Int8NmPrefillKernel> int8_nm_prefill_kernel(const NmPrefillKey& key);
// The generator itself (tests assemble it on any CPU).
std::unique_ptr<Int8NmPrefillKernel> make_int8_nm_prefill_avx512_vnni(const NmPrefillKey& key);

}  // namespace sparq::jit
