// A whole file memory-mapped read-only (model files: safetensors, GGUF). Move-only; unmaps on
// destruction.
#pragma once

#include <cstdint>
#include <string>

namespace sparq {

class MappedFile {
 public:
  // Throws ModelFileError naming the path when the file cannot be opened, is not a regular file
  // or cannot be mapped. An empty file maps to data() == nullptr, size() == 0.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return static_cast<const uint8_t*>(address_); }
  uint64_t size() const { return size_; }
  // Lets the OS drop from this process's resident memory the pages of the mapping that lie wholly
  // inside [data, data + bytes) (madvise MADV_DONTNEED on the read-only private file mapping: a
  // later read maps them from the file again). Loaders call it once a tensor is converted, so
  // that a model's load does not keep the file's pages resident beside the packed weights. Best
  // effort; a range outside the mapping is ignored.
  void release(const void* data, uint64_t bytes) const;

 private:
  void* address_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace sparq
