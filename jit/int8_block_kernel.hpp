// The int8 4x1 block-sparse tile kernel: a run of 4-row groups x one slice of tile_tokens()
// tokens, y = act(float(sum x_q w_q) * x_scale * w_scale + bias) [+ residual] [-> int8].
//
// Variants (chosen from CPUID, see cpu_features.hpp):
//   avx2         JIT, pairs_i16 layout: vpmaddwd on s16 activations, 4 rows x 16 tokens per tile
//   avx512_vnni  JIT, quads_u8 layout: vpdpbusd on u8 activations, 4 rows x 64 tokens per tile
//   reference    portable C++ on the pairs_i16 layout, for CPUs without AVX2
// Every variant stores full tiles (tile_tokens() tokens, all 4 rows of every group); the caller
// points y at a scratch block when the slice's tokens or the last group's rows run short.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "jit/block_tile.hpp"
#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "sparq/types.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::jit {

struct Int8KernelKey {
  Isa isa = Isa::avx2;
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  bool int8_output = false;
  // Prefetch the activation columns of the entry kEntryReadAhead places ahead: pays when a
  // slice of activations does not fit in L1 (large in_features).
  bool prefetch_columns = false;
  // bf16 output written by the kernel itself (only kernels that store partial tiles; the others
  // write fp32 and the tile loop converts).
  bool bf16_output = false;
  // avx512_vnni: tiles of 16 * quarters tokens, 4 (the quads_u8 chunk) or 1: one 16-token
  // quarter of a chunk in token order (x at the chunk + 16 * quarter, token scales in token
  // order), for calls and remainders of at most 16 tokens (32 with VBMI).
  int quarters = 4;
  // The 16-token tile gathers an entry's columns with VBMI's vpermb (else vpermd + vpshufb).
  bool vbmi = false;
  // The epilogue: dequantize, bias, activation, operand, store (int8, bf16 or fp32).
  PostOpList post_ops() const {
    return PostOpList::make(true, activation, operand,
                            int8_output   ? TileOutput::s8
                            : bf16_output ? TileOutput::bf16
                                          : TileOutput::f32);
  }
  auto operator<=>(const Int8KernelKey&) const = default;
};

class Int8BlockKernel : public BlockTileKernel {
 public:
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
