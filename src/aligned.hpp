// 64-byte aligned storage for packed weights and activation buffers (one zmm / cache line).
// Buffers of kLargeBufferBytes or more are mapped on their own (mmap), so that freeing one gives
// its memory back to the OS at once: from the C heap, a weight freed after the model has loaded
// (a dense layer's plain copy, once oneDNN holds its reordered one) stayed resident.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace sparq {

// Under AddressSanitizer every buffer stays on the instrumented heap, where overruns are caught.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr std::size_t kLargeBufferBytes = static_cast<std::size_t>(-1);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr std::size_t kLargeBufferBytes = static_cast<std::size_t>(-1);
#else
inline constexpr std::size_t kLargeBufferBytes = std::size_t{2} << 20;
#endif
#else
inline constexpr std::size_t kLargeBufferBytes = std::size_t{2} << 20;
#endif

// Maps `bytes` (page-aligned, zero-filled); std::bad_alloc when the mapping fails.
// release_large takes the same byte count.
void* allocate_large(std::size_t bytes);
void release_large(void* p, std::size_t bytes) noexcept;

template <typename T>
struct CacheAlignedAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheAlignedAllocator() = default;
  template <typename U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kLargeBufferBytes) return static_cast<T*>(allocate_large(bytes));
    return static_cast<T*>(::operator new(bytes, kAlignment));
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) >= kLargeBufferBytes)
      release_large(p, n * sizeof(T));
    else
      ::operator delete(p, kAlignment);
  }
  template <typename U>
  bool operator==(const CacheAlignedAllocator<U>&) const {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, CacheAlignedAllocator<T>>;

}  // namespace sparq
