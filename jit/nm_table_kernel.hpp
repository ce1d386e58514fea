// The 2:4 table kernels for prefill-sized calls (sparse/nm_table_pack.hpp): a run of 4-row groups
// x one 64-token slice x one chunk of units, tokens in the vector lanes. Per row and unit, one
// table vector per 16 tokens (the row's combination, at the offset its entry names) times the
// row's kept values broadcast:
//   int8 (avx512_vnni)  vpdpbusd: 4 kept values (two blocks) per lane and instruction
//   bf16 (avx512 + AVX512_BF16)  vdpbf16ps: 2 kept values (one block) per lane and instruction
// half the dot-product instructions of a dense kernel, each with one load from the table (which
// stays in L2 while every row runs over it). The accumulators wait in BlockTileArgs::partial
// between chunks; the last chunk applies the epilogue (int8: dequantize; both: bias, activation)
// and writes the tile through the L1 stage with residual and output type (fp32, bf16, int8).
// No portable variant: layers fall back to other kernels where these cannot run; tests compare
// them with sparse/reference.
#pragma once

#include <memory>
#include <string>

#include "jit/block_tile.hpp"
#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "sparq/types.hpp"
#include "sparse/nm_table_pack.hpp"

namespace sparq::jit {

struct NmTableKernelKey {
  sparse::NmTableType type = sparse::NmTableType::int8;
  Activation activation = Activation::none;
  Operand operand = Operand::none;      // the epilogue's tensor operand
  TileOutput output = TileOutput::f32;  // s8 only for int8
  int quarters = 4;  // 16 * quarters tokens per tile: 4, or 1 and 2 for bf16's short slices
  // The epilogue: dequantize (int8 tables), bias, activation, operand, store.
  PostOpList post_ops() const {
    return PostOpList::make(type == sparse::NmTableType::int8, activation, operand, output);
  }
  auto operator<=>(const NmTableKernelKey&) const = default;
};

class NmTableKernel : public BlockTileKernel {
 public:
  const NmTableKernelKey& key() const { return key_; }
  int tile_tokens() const override { return 16 * key_.quarters; }
  bool stores_partial_tiles() const override { return true; }
  // "jit:int8-2:4-table:avx512_vnni", "jit:bf16-2:4:avx512"
  std::string name() const;

 protected:
  explicit NmTableKernel(const NmTableKernelKey& key) : key_(key) {}

 private:
  NmTableKernelKey key_;
};

// What a key's kernel needs from the CPU.
CpuFeatures nm_table_features(sparse::NmTableType type);
// Generates (or finds in the process-wide cache) the kernel for a key. NotSupported if the CPU
// cannot run it (and no code runner can), an int8 output is asked of a bf16 kernel, or quarters
// is not 4 (int8) or 1, 2, 4 (bf16).
std::shared_ptr<const NmTableKernel> nm_table_kernel(const NmTableKernelKey& key);
// The generator itself (tests assemble it on any CPU).
std::unique_ptr<NmTableKernel> make_nm_table_kernel_avx512(const NmTableKernelKey& key);

}  // namespace sparq::jit
