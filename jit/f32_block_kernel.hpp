// The f32 sparse tile kernels: a run of 4-row groups x one slice of tile_tokens() tokens,
// y = act(sum x w + bias) [+ residual], fp32 in, fp32 out, fp32 accumulation. Two weight layouts:
//   block_4x1  sparse/f32_block_pack.hpp: per entry (one column of a group) 2 loads of 8
//              activations, 4 broadcast weights, 8 vfmadd231ps
//   n2_m4      sparse/f32_nm_pack.hpp (2:4): per block of 4 columns and row, 2 broadcast values,
//              each times the 16 activations of its column (2 vfmadd231ps with memory operands)
// Variants (chosen from CPUID, see cpu_features.hpp):
//   avx512       JIT on AVX-512 F/BW/VL, 4 rows x 64 tokens per tile, tiles staged and stored
//                by the kernel; bf16_4x1 also needs AVX512_BF16 (keys asking for avx512_vnni get
//                the avx512 variant: the float kernels need no VNNI)
//   avx2         JIT, 4 rows x 16 tokens per tile
//   reference    portable C++ on the same layouts, for CPUs without AVX2/FMA
#pragma once

#include <memory>
#include <string>

#include "jit/block_tile.hpp"
#include "jit/cpu_features.hpp"
#include "jit/operand.hpp"
#include "sparq/types.hpp"

namespace sparq::jit {

// block_4x1 and n2_m4 run fp32 FMAs (bf16 layers on them: bf16-rounded values); bf16_4x1 runs
// vdpbf16ps on bf16-stored weights (AVX512_BF16 only).
enum class F32Layout { block_4x1, n2_m4, bf16_4x1 };

struct F32KernelKey {
  Isa isa = Isa::avx2;
  F32Layout layout = F32Layout::block_4x1;
  Activation activation = Activation::none;
  Operand operand = Operand::none;  // the epilogue's tensor operand
  // Prefetch the activation column of the entry kEntryReadAhead places ahead: pays when a slice
  // of activations does not fit in L1 (large in_features).
  bool prefetch_columns = false;
  // bf16 output written by the kernel (kernels that store partial tiles only).
  bool bf16_output = false;
  // AVX-512 tiles of 16 * quarters tokens: 4, or 2 for short calls and remainders of the fp32
  // 4x1 and 2:4 layouts (32-token slices; the packed offsets are for 64-token ones, and the
  // 32-token kernels scale them).
  int quarters = 4;
  // The epilogue: bias, activation, operand, store (bf16 or fp32).
  PostOpList post_ops() const {
    return PostOpList::make(false, activation, operand,
                            bf16_output ? TileOutput::bf16 : TileOutput::f32);
  }
  auto operator<=>(const F32KernelKey&) const = default;
};

class F32BlockKernel : public BlockTileKernel {
 public:
  const F32KernelKey& key() const { return key_; }
  std::string name() const;  // e.g. "jit:f32-4x1:avx2", "jit:f32-2:4:avx2"

 protected:
  explicit F32BlockKernel(const F32KernelKey& key) : key_(key) {}

 private:
  F32KernelKey key_;
};

// Whether the bf16_4x1 kernel runs here: AVX512_BF16 and the float kernels at avx512 (the ISA
// cap included).
bool native_bf16_available();
// Whether bf16 4x1 tile layers run the bf16_4x1 kernel here: native_bf16_available() and the CPU
// tuning's choice (CpuTuning::bf16_tiles_on_vdpbf16ps); else the fp32 kernel on rounded values.
bool bf16_tiles_on_vdpbf16ps();

// Generates (or finds in the process-wide cache) the kernel for a key. Throws NotSupported if the
// key's ISA is not available on this CPU or has no f32 variant.
std::shared_ptr<const F32BlockKernel> f32_block_kernel(const F32KernelKey& key);

// The concrete variants (used by f32_block_kernel; exposed for tests).
std::unique_ptr<F32BlockKernel> make_f32_kernel_avx512(const F32KernelKey& key);  // either layout
std::unique_ptr<F32BlockKernel> make_f32_kernel_avx2(const F32KernelKey& key);    // either layout
std::unique_ptr<F32BlockKernel> make_f32_nm_kernel_avx2(const F32KernelKey& key);
std::unique_ptr<F32BlockKernel> make_f32_kernel_reference(const F32KernelKey& key);

}  // namespace sparq::jit
