// The argument block every block-sparse tile kernel (int8, f32) is called with: a run of 4-row
// groups of the packed weight over one slice of tokens. Kernels of one dtype ignore the fields
// that belong to another.
#pragma once

#include <cstdint>

#include "jit/post_ops.hpp"

namespace sparq::jit {

// A kernel call runs up to kGroupsPerCall row groups (32 rows) over one slice of tokens.
inline constexpr int kGroupsPerCall = 8;
// Kernels that stage their own tiles (stores_partial_tiles()) transpose into an L1 block of
// [tokens][kGroupsPerCall * 4 rows] fp32, then write y a whole 128-byte token row at a time: y's
// rows are often 4 KiB apart (out a multiple of 1024 floats), and 16-byte stores to 64 such rows
// all fall into one L1 set and miss on every group.
inline constexpr int kStageRowBytes = kGroupsPerCall * 4 * 4;
inline constexpr int kStageBytes = 64 * kStageRowBytes;
// Kernels that stage their own tiles also get this much more scratch after the stage (the f32
// 2:4 kernel keeps its groups' partial sums there).
inline constexpr int kScratchBytes = kGroupsPerCall * 16 * 64;

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
  // Read only by kernels that stage their own tiles:
  uint8_t* stage;        // kStageBytes + kScratchBytes of 64-byte-aligned scratch
  int64_t valid_tokens;  // tokens of the slice to store, 1..tile_tokens()
  int64_t valid_rows;    // rows of the call to store, 1..4 * (group_end - group_begin)
  // Read only by kernels that defer their copy-out (defers_copy_out()): the previous call's
  // staged tile, which this call writes to its y between its own groups (prev_valid_tokens 0:
  // none). y_stride, residual_stride and inv_y_scale are the previous call's too.
  const uint8_t* prev_stage;
  void* prev_y;
  const float* prev_residual;
  int64_t prev_valid_tokens;
  int64_t prev_valid_rows;
  // Read only by the 2:4 table kernels (jit/nm_table_kernel.hpp), which run the units
  // [chunk_begin, chunk_begin + chunk_units) of every group: x is then that chunk's table,
  // entries the first group's entry of the chunk (the others follow it), and each group's 16
  // accumulators wait in `partial` (1 KiB per group, the call's first group first) between
  // chunks.
  uint8_t* partial;
  int64_t chunk_begin;
  int64_t chunk_units;
  int64_t chunk_flags;  // kFirstChunk: start from zero; kLastChunk: finish and write y
};
inline constexpr int64_t kFirstChunk = 1, kLastChunk = 2;

// A generated (or portable) tile kernel: runs the groups [group_begin, group_end) of a packed
// weight over one slice of tile_tokens() tokens. Unless stores_partial_tiles(), it stores full
// tiles (all 4 rows of every group, every token of the slice) of fp32 or int8, and the caller
// stages short tiles and converts bf16 output; a kernel that stores partial tiles writes exactly
// valid_tokens x valid_rows elements of its output type (fp32, int8 or bf16) and nothing else.
// A kernel that defers its copy-out leaves its tile in `stage` and writes the previous call's
// staged tile instead, spread between its own groups (a call with no groups only flushes): the
// caller alternates two stages and flushes after its last call.
class BlockTileKernel {
 public:
  virtual ~BlockTileKernel() = default;
  virtual void run(const BlockTileArgs& args) const = 0;
  virtual int tile_tokens() const = 0;
  virtual bool stores_partial_tiles() const { return false; }
  virtual bool defers_copy_out() const { return false; }
};

}  // namespace sparq::jit
