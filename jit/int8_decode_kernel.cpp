#include "jit/int8_decode_kernel.hpp"

#include <xbyak/xbyak.h>

#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_decode_pack.hpp"

namespace sparq::jit {

std::string Int8DecodeKernel::name() const {
  const char* prefix = key_.isa == Isa::reference ? "cpp:" : "jit:";
  return std::string(prefix) + "int8-16x1-decode:" + isa_name(key_.isa);
}

std::shared_ptr<const Int8DecodeKernel> int8_decode_kernel(const DecodeKernelKey& requested) {
  DecodeKernelKey key = requested;
  if (!can_run(key.isa))
    throw NotSupported(std::string("int8 decode kernel for ") + isa_name(key.isa) +
                       " requested, but this CPU lacks it");
  if (key.tokens < 1 || key.tokens > sparse::kDecodeMaxTokens)
    throw InvalidArgument("int8 decode kernel: tokens must be 1.." +
                          std::to_string(sparse::kDecodeMaxTokens) + ", got " +
                          std::to_string(key.tokens));
  if (key.isa == Isa::avx512)
    throw NotSupported(
        "int8 decode kernel for avx512 requested: the int8 kernels need VNNI on "
        "AVX-512 (avx512_vnni) or run on avx2");
  static KernelCache<DecodeKernelKey, Int8DecodeKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<Int8DecodeKernel> {
    if (key.isa == Isa::reference) return make_int8_decode_reference(key);
    try {
      if (key.isa == Isa::avx512_vnni) return make_int8_decode_avx512_vnni(key);
      return make_int8_decode_avx2(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the ") + isa_name(key.isa) +
                         " int8 decode kernel failed: " + e.what());
    }
  });
}

}  // namespace sparq::jit
