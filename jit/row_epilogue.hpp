// The epilogue of a dense int8 product, one output row at a time:
//   y[o] = out(act(float(acc[o] - compensation[o]) * x_scale * w_scale[o] + bias[o])
//              [+ residual[o]])
// (compensation: what u8 activations, q + 128, add to the sums; none where the key says so)
// with out fp32, int8 (requantized with inv_y_scale) or bf16; or, for fp32 sums (float_acc),
//   y[o] = out(act(acc[o] + bias[o]) [+ residual[o]]). Generated for AVX-512 and AVX2 with
// the same activation code as the tile kernels (EpilogueEmitter); portable C++ elsewhere.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/block_tile.hpp"
#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

// Field order is the JIT code's ABI.
struct RowEpilogueArgs {
  const void* acc;       // int32, or fp32 when the key has float_acc
  const float* w_scale;  // not read when the key has float_acc
  const float* bias;
  const float* residual;  // read when the key has residual
  void* y;
  int64_t blocks;  // elements / RowEpilogue::block()
  float x_scale;
  float inv_y_scale;
  const int32_t* compensation;  // read when the key has compensation
};

struct RowEpilogueKey {
  Isa isa = Isa::avx2;
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  TileOutput output = TileOutput::f32;
  bool float_acc = false;     // fp32 sums (no dequantization)
  bool compensation = false;  // int32 sums less a per-column compensation
  // The epilogue: dequantize (int32 sums), bias, activation, operand, store.
  PostOpList post_ops() const { return PostOpList::make(!float_acc, activation, operand, output); }
  auto operator<=>(const RowEpilogueKey&) const = default;
};

class RowEpilogue {
 public:
  virtual ~RowEpilogue() = default;
  // Elements per step of the generated loop (the row is padded to a multiple of it).
  virtual int block() const = 0;
  virtual void run(const RowEpilogueArgs& args) const = 0;
};

// The epilogue for a key, generated once per process. key.isa must be avx2 or an AVX-512 level (the
// AVX-512 variant uses F and BW only) and available here.
std::shared_ptr<const RowEpilogue> row_epilogue(const RowEpilogueKey& key);

// Applies the epilogue to one row of n elements: `kernel` (may be null: portable C++) for the
// whole blocks, the tail through padded buffers on the stack. compensation: [n], read when the
// key has compensation.
void apply_row_epilogue(const RowEpilogue* kernel, const RowEpilogueKey& key, const void* acc,
                        float x_scale, const float* w_scale, const float* bias,
                        const float* residual, void* y, int64_t n, float inv_y_scale,
                        const int32_t* compensation = nullptr);

}  // namespace sparq::jit
