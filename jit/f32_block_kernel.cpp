#include "jit/f32_block_kernel.hpp"

#include <xbyak/xbyak.h>

#include <algorithm>

#include "jit/cpu_tuning.hpp"
#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"

namespace sparq::jit {

std::string F32BlockKernel::name() const {
  const char* prefix = key_.isa == Isa::reference ? "cpp:" : "jit:";
  const char* layout = key_.layout == F32Layout::n2_m4      ? "f32-2:4:"
                       : key_.layout == F32Layout::bf16_4x1 ? "bf16-4x1:"
                                                            : "f32-4x1:";
  return std::string(prefix) + layout + isa_name(key_.isa);
}

bool native_bf16_available() {
  return best_float_isa() == Isa::avx512 && cpu_features().avx512_bf16;
}

bool bf16_tiles_on_vdpbf16ps() {
  return native_bf16_available() && cpu_tuning().bf16_tiles_on_vdpbf16ps;
}

std::shared_ptr<const F32BlockKernel> f32_block_kernel(const F32KernelKey& requested) {
  F32KernelKey key = requested;
  if (key.isa > Isa::avx512) key.isa = Isa::avx512;
  if (!can_run(key.isa))
    throw NotSupported(
        std::string("f32 block kernel for ") + isa_name(key.isa) +
        " requested, but this CPU lacks it (best here: " + isa_name(best_float_isa()) + ")");
  if (key.isa != Isa::avx512) key.quarters = 4;
  if (key.quarters != 4 && (key.quarters != 2 || key.layout == F32Layout::bf16_4x1))
    throw NotSupported(
        "f32 tile kernels take 64-token tiles (quarters 4), and 32-token ones "
        "(quarters 2) for the fp32 4x1 and 2:4 layouts only; got quarters " +
        std::to_string(key.quarters));
  if (key.layout == F32Layout::bf16_4x1 && (key.isa != Isa::avx512 || !can_run(bf16_features())))
    throw NotSupported(std::string("bf16 block kernel for ") + isa_name(key.isa) +
                       " requested: it needs avx512 with AVX512_BF16");
  static KernelCache<F32KernelKey, F32BlockKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<F32BlockKernel> {
    if (key.isa == Isa::reference) return make_f32_kernel_reference(key);
    try {
      if (key.isa == Isa::avx512) return make_f32_kernel_avx512(key);
      return make_f32_kernel_avx2(key);
    } catch (const Xbyak::Error& e) {
      // E.g. a host that refuses executable memory.
      throw NotSupported(std::string("generating the ") + isa_name(key.isa) +
                         " f32 kernel failed: " + e.what());
    }
  });
}

}  // namespace sparq::jit
