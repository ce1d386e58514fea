// The argument block every block-sparse tile kernel (int8, f32) is called with: a run of 4-row
// groups of the packed weight over one slice of tokens. Kernels of one dtype ignore the fields
// that belong to another.
#pragma once

#include <cstdint>

namespace sparq::jit {

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct BlockTileArgs {
  const uint8_t* x;             // the activation slice, [in][tile_tokens()] (layout element type)
  const uint8_t* entries;       // all entries of the layer; group_begin indexes them
  const int64_t* group_begin;   // first group's entry index; group g ends where g + 1 begins
  const int64_t* group_end;     // &group_begin[number of groups to run]
  const float* x_scale;         // int8: the slice's token scales, in kernel lane order
  const float* w_scale;         // int8: row scales, from the first group's row 0 on
  const float* bias;            // row biases, from the first group's row 0 on
  const int32_t* compensation;  // row compensations (quads_u8), likewise
  void* y;                      // output of (token 0 of the slice, row 0 of the first group)
  int64_t y_stride;             // bytes between tokens of y
  const float* residual;        // like y, fp32; read when the kernel was built with residual
  int64_t residual_stride;      // bytes between tokens of residual
  float inv_y_scale;            // int8 output: 1 / y_scale (unused otherwise)
};

// A generated (or portable) tile kernel: runs the groups [group_begin, group_end) of a packed
// weight over one slice of tile_tokens() tokens and stores full tiles (all 4 rows of every group,
// every token of the slice); the caller stages short tiles.
class BlockTileKernel {
 public:
  virtual ~BlockTileKernel() = default;
  virtual void run(const BlockTileArgs& args) const = 0;
  virtual int tile_tokens() const = 0;
};

}  // namespace sparq::jit
