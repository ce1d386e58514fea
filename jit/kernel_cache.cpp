// KernelCache is a header-only template; this unit anchors the instantiations sparq uses.
#include "jit/kernel_cache.hpp"

#include "jit/int8_block_kernel.hpp"

namespace sparq::jit {
template class KernelCache<Int8KernelKey, Int8BlockKernel>;
}  // namespace sparq::jit
