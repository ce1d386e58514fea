// The one place sparq talks to oneDNN (2.6): dense matmul primitives for the dense layers and the
// dense baselines of the benchmark. y[tokens x out] = x[tokens x in] * w^T, with fp32 output.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sparq/types.hpp"

namespace sparq {

// Whether oneDNN has a native bf16 GEMM here (AVX512_BF16 or AMX; elsewhere it would emulate).
bool onednn_has_bf16();

// Whether oneDNN's int8 GEMM is exact here: it is with VNNI (vpdpbusd); without it oneDNN uses
// vpmaddubsw, whose 16-bit pair sums saturate on full-range int8 data. Asks oneDNN itself, so
// ONEDNN_MAX_CPU_ISA is honoured.
bool onednn_int8_is_exact();

// Whether oneDNN's GEMM of this dtype (int8 or bf16) runs on AMX tiles here: then its dense
// prefill outruns sparq's AVX-512 sparse kernels unless the weight is very sparse
// (src/kernel_thresholds.hpp). Asks oneDNN, so ONEDNN_MAX_CPU_ISA is honoured; false for f32.
bool onednn_runs_amx(DType dtype);

// A layer's weights as reordered for its first primitive, for the layer's other primitives (other
// token counts) to use instead of a copy of their own.
struct DnnlSharedWeights;

// Reorders shared weights back into the plain [out x in] weight they were made from (s8, or f32
// for the floating kinds; bf16 ones come back rounded); false where oneDNN has no such reorder.
bool read_back_weights(const DnnlSharedWeights& weights, bool floating, int64_t out, int64_t in,
                       void* plain);

class DnnlMatmul {
 public:
  enum class Kind {
    f32,       // fp32 x, fp32 w -> fp32 y = act(x w^T + bias)
    s8s8_f32,  // s8 x, s8 w -> fp32 y = act(float(acc) * w_scale[o] + bias[o])
    u8s8_f32,  // u8 x, s8 w -> fp32 y, as s8s8_f32 (oneDNN's fastest int8 path without VNNI)
    s8s8_s32,  // s8 x, s8 w -> s32 y = acc (no scales, bias or activation)
    u8s8_s32,  // u8 x, s8 w -> s32 y = acc, as s8s8_s32 (with VNNI as exact, and faster: the s8
               // path adds oneDNN's compensation; 3072 x 768 x 128 on an Intel Xeon 0.83x)
    bf16,      // bf16 x, w given fp32 and stored as bf16 -> fp32 y = act(x w^T + bias)
  };
  // Builds the primitive for exactly `tokens` rows. w: fp32 [out x in] (f32) or s8 [out x in]
  // (s8s8, with w_scale [out]); bias [out] or null; the activation runs after the bias.
  // share (optional): null before the layer's first primitive, which sets it to its reordered
  // weights; a later primitive uses them where its implementation (the one oneDNN picks for
  // `tokens` with the layout left to it) takes that layout, and reorders a copy of its own only
  // where it does not (owns_weights()): from w, or from the shared weights when w is null.
  DnnlMatmul(Kind kind, int64_t tokens, int64_t out, int64_t in, const void* w,
             const float* w_scale, const float* bias, Activation activation, int threads,
             std::shared_ptr<DnnlSharedWeights>* share = nullptr);
  ~DnnlMatmul();
  DnnlMatmul(DnnlMatmul&&) noexcept;

  // x: fp32, s8/u8 or bf16 [tokens x in]; y: fp32 or s32 [tokens x out], as the kind says.
  // (oneDNN 2.6 runs a per-token scale post-op only on its reference kernel, so the s8 kinds
  // leave per-token scaling to the caller.)
  void run(const void* x, void* y) const;
  const char* implementation() const;  // oneDNN's name for the kernel it picked
  // Whether the primitive holds a reordered copy of the weights of its own (not shared).
  bool owns_weights() const;
  // Bytes of the reordered weights the primitive reads (shared or its own).
  int64_t weight_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparq
