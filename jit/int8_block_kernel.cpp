#include "jit/int8_block_kernel.hpp"

#include <xbyak/xbyak.h>

#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"

namespace sparq::jit {

std::string Int8BlockKernel::name() const {
  const char* prefix = key_.isa == Isa::reference ? "cpp:" : "jit:";
  return std::string(prefix) + "int8-4x1:" + isa_name(key_.isa);
}

std::shared_ptr<const Int8BlockKernel> int8_block_kernel(const Int8KernelKey& key) {
  if (!can_run(key.isa))
    throw NotSupported(
        std::string("int8 block kernel for ") + isa_name(key.isa) +
        " requested, but this CPU lacks it (best here: " + isa_name(best_int8_isa()) + ")");
  if (key.isa == Isa::avx512)
    throw NotSupported(
        "int8 block kernel for avx512 requested: the int8 kernels need VNNI on "
        "AVX-512 (avx512_vnni) or run on avx2");
  if (key.vbmi && (key.quarters != 1 || !can_run(vbmi_features())))
    throw NotSupported(
        "int8 block kernel: the VBMI variant is a 16-token avx512_vnni tile and "
        "needs " +
        vbmi_features().names() + "; this CPU has " + cpu_features().names());
  if (key.quarters != 4 && (key.isa != Isa::avx512_vnni || key.quarters != 1))
    throw NotSupported("int8 block kernel: quarters " + std::to_string(key.quarters) + " for " +
                       isa_name(key.isa) +
                       " requested; avx512_vnni takes 4 or 1 (64- or 16-token tiles), the "
                       "other ISAs 4");
  static KernelCache<Int8KernelKey, Int8BlockKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<Int8BlockKernel> {
    try {
      switch (key.isa) {
        case Isa::avx512_vnni:
          return make_int8_kernel_avx512_vnni(key);
        case Isa::avx2:
          return make_int8_kernel_avx2(key);
        case Isa::avx512:
        case Isa::reference:
          break;
      }
    } catch (const Xbyak::Error& e) {
      // E.g. a host that refuses executable memory.
      throw NotSupported(std::string("generating the ") + isa_name(key.isa) +
                         " int8 kernel failed: " + e.what());
    }
    return make_int8_kernel_reference(key);
  });
}

}  // namespace sparq::jit
