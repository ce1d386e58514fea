// A thread-safe cache of generated kernels, keyed by everything that changes the emitted code.
// Kernels live as long as the process: a packed layer holds a shared_ptr to the one it uses.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace sparq::jit {

template <typename Key, typename Kernel>
class KernelCache {
 public:
  std::shared_ptr<const Kernel> get(const Key& key,
                                    const std::function<std::unique_ptr<Kernel>()>& make) {
    std::lock_guard lock(mutex_);
    auto it = kernels_.find(key);
    if (it == kernels_.end())
      it = kernels_.emplace(key, std::shared_ptr<const Kernel>(make())).first;
    return it->second;
  }

 private:
  mutable std::mutex mutex_;
  std::map<Key, std::shared_ptr<const Kernel>> kernels_;
};

}  // namespace sparq::jit
