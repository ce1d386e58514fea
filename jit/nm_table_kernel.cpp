#include "jit/nm_table_kernel.hpp"

#include <xbyak/xbyak.h>

#include "jit/kernel_cache.hpp"
#include "sparq/error.hpp"

namespace sparq::jit {

std::string NmTableKernel::name() const {
  return key_.type == sparse::NmTableType::int8 ? "jit:int8-2:4-table:avx512_vnni"
                                                : "jit:bf16-2:4:avx512";
}

CpuFeatures nm_table_features(sparse::NmTableType type) {
  return type == sparse::NmTableType::int8 ? features_of(Isa::avx512_vnni) : bf16_features();
}

std::shared_ptr<const NmTableKernel> nm_table_kernel(const NmTableKernelKey& key) {
  const CpuFeatures needs = nm_table_features(key.type);
  if (!can_run(needs))
    throw NotSupported(
        "the " + std::string(key.type == sparse::NmTableType::int8 ? "int8" : "bf16") +
        " 2:4 table kernel needs " + needs.names() + "; this CPU has " + cpu_features().names());
  if (key.type == sparse::NmTableType::bf16 && key.output == TileOutput::s8)
    throw NotSupported("the bf16 2:4 table kernel writes fp32 or bf16, not int8");
  const bool int8 = key.type == sparse::NmTableType::int8;
  if (int8 ? key.quarters != 4 : key.quarters != 1 && key.quarters != 2 && key.quarters != 4)
    throw NotSupported("the 2:4 table kernel takes tiles of 4 quarters (64 tokens)" +
                       std::string(int8 ? "" : ", or 1 or 2 for bf16") + ", not " +
                       std::to_string(key.quarters));
  static KernelCache<NmTableKernelKey, NmTableKernel> cache;
  return cache.get(key, [&]() -> std::unique_ptr<NmTableKernel> {
    try {
      return make_nm_table_kernel_avx512(key);
    } catch (const Xbyak::Error& e) {
      throw NotSupported(std::string("generating the 2:4 table kernel failed: ") + e.what());
    }
  });
}

}  // namespace sparq::jit
