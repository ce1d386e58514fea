// What the fuzz harnesses share: the fuzzer's bytes as a file the loaders can open by path (an
// anonymous in-memory file, /proc/self/fd/N: no disk, and mmap works on it), and the one rule of
// every harness: a loader may refuse its input only with sparq's own exceptions; anything else
// (another exception, a crash, a sanitizer report, a leak, a hang) is a bug.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "sparq/error.hpp"

namespace sparq::fuzz {

class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("sparq-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("memfd_create failed");
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) throw std::runtime_error("writing the memory file failed");
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

// Runs f; sparq's refusals (ModelFileError, InvalidArgument, NotSupported) are expected outcomes.
template <typename F>
void refusals_allowed(F&& f) {
  try {
    f();
  } catch (const ModelFileError&) {
  } catch (const InvalidArgument&) {
  } catch (const NotSupported&) {
  }
}

}  // namespace sparq::fuzz
