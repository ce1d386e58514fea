#include "src/threading.hpp"

#include <sched.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sparq/error.hpp"

namespace sparq {
namespace {

tbb::task_arena& arena_for(int threads) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
  std::lock_guard lock(mutex);
  auto& arena = arenas[threads];
  if (!arena) arena = std::make_unique<tbb::task_arena>(threads);
  return *arena;
}

}  // namespace

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

void parallel_ranges(int threads, int64_t n, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    body(0, n);
    return;
  }
  arena_for(threads).execute([&] {
    const int64_t grain = std::max<int64_t>(1, n / (4 * threads));
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, n, grain),
        [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); },
        tbb::static_partitioner());
  });
}

}  // namespace sparq
