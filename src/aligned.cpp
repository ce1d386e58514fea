#include "src/aligned.hpp"

#include <sys/mman.h>

namespace sparq {
namespace {

std::size_t page_rounded(std::size_t bytes) { return (bytes + 4095) & ~std::size_t{4095}; }

}  // namespace

void* allocate_large(std::size_t bytes) {
  void* p = mmap(nullptr, page_rounded(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

void release_large(void* p, std::size_t bytes) noexcept { munmap(p, page_rounded(bytes)); }

}  // namespace sparq
