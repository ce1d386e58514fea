#include "src/threading.hpp"

#include <sched.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sparq/error.hpp"

namespace sparq {

tbb::task_arena& arena_for(int threads) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
  std::lock_guard lock(mutex);
  auto& arena = arenas[threads];
  if (!arena) {
    arena = std::make_unique<tbb::task_arena>(threads);
    arena->initialize();
  }
  return *arena;
}

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return tbb::this_task_arena::max_concurrency();
}

int resolve_threads(int requested) {
  if (requested < 0)
    throw InvalidArgument("threads must be >= 0 (0 means all cores), got " +
                          std::to_string(requested));
  return requested == 0 ? hardware_threads() : requested;
}

}  // namespace sparq
