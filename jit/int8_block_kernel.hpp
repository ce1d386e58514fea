// The int8 4x1 block-sparse tile kernel: one group of 4 output rows x one chunk of up to 64
// tokens, y = act(float(sum x_q w_q) * x_scale * w_scale + bias) [+ residual] [-> int8].
//
// Variants (chosen from CPUID, see cpu_features.hpp):
//   avx2         JIT, pairs_i16 layout: vpmaddwd on s16 activations, 4 rows x 16 tokens per step
//   avx512_vnni  JIT, quads_u8 layout: vpdpbusd on u8 activations, 4 rows x 64 tokens per step
//   reference    portable C++ on the pairs_i16 layout, for CPUs without AVX2
// Every variant stores full tiles (tile_tokens() per step, all 4 rows); the caller points y at a
// scratch tile when the chunk's tokens or the group's rows run short.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/cpu_features.hpp"
#include "sparq/types.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::jit {

// Field order is the JIT code's ABI: offsets are taken with offsetof.
struct Int8TileArgs {
  const uint8_t* x;        // activation chunk base, [in][64] in the layout's element type
  const uint8_t* entries;  // the group's first entry
  int64_t n_entries;
  int64_t n_steps;              // token steps of tile_tokens() each, 1..64 / tile_tokens()
  const float* x_scale;         // the chunk's 64 token scales, in kernel lane order
  const float* w_scale;         // 4 row scales
  const float* bias;            // 4 row biases
  const int32_t* compensation;  // 4 row compensations (quads_u8)
  void* y;                      // output of (token 0 of the chunk, row 0 of the group)
  int64_t y_stride;             // bytes between tokens of y
  const float* residual;        // like y, fp32; read when the kernel was built with residual
  int64_t residual_stride;      // bytes between tokens of residual
  float inv_y_scale;            // int8 output: 1 / y_scale
};

struct Int8KernelKey {
  Isa isa = Isa::avx2;
  Activation activation = Activation::none;
  bool residual = false;
  bool int8_output = false;
  auto operator<=>(const Int8KernelKey&) const = default;
};

class Int8BlockKernel {
 public:
  virtual ~Int8BlockKernel() = default;
  virtual void run(const Int8TileArgs& args) const = 0;
  virtual int tile_tokens() const = 0;
  const Int8KernelKey& key() const { return key_; }
  sparse::Int8Layout layout() const {
    return key_.isa == Isa::avx512_vnni ? sparse::Int8Layout::quads_u8
                                        : sparse::Int8Layout::pairs_i16;
  }
  // e.g. "jit:int8-4x1:avx2"
  std::string name() const;

 protected:
  explicit Int8BlockKernel(const Int8KernelKey& key) : key_(key) {}

 private:
  Int8KernelKey key_;
};

// Generates (or finds in the process-wide cache) the kernel for a key. Throws NotSupported if
// the key's ISA is not available on this CPU.
std::shared_ptr<const Int8BlockKernel> int8_block_kernel(const Int8KernelKey& key);

// The concrete variants (used by int8_block_kernel; exposed for tests).
std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx2(const Int8KernelKey& key);
std::unique_ptr<Int8BlockKernel> make_int8_kernel_avx512_vnni(const Int8KernelKey& key);
std::unique_ptr<Int8BlockKernel> make_int8_kernel_reference(const Int8KernelKey& key);

}  // namespace sparq::jit
