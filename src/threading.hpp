// Thread pools for sparq's kernels: a oneTBB arena per thread count, shared process-wide.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdint>

namespace sparq {

// Cores available to this process.
int hardware_threads();
// 0 -> all cores; negative -> InvalidArgument.
int resolve_threads(int requested);
// The process-wide arena for a thread count (made on first use; takes a lock: call at pack time).
tbb::task_arena& arena_for(int threads);

// Runs body(begin, end) over [0, n) split into contiguous ranges on the arena's threads (the
// caller's thread included). With a one-thread arena, or n == 1, it runs inline. A template, so
// the hot path neither allocates nor locks.
template <typename Body>
void parallel_ranges(tbb::task_arena& arena, int64_t n, const Body& body) {
  if (n <= 0) return;
  const int threads = arena.max_concurrency();
  if (threads <= 1 || n == 1) {
    body(int64_t{0}, n);
    return;
  }
  arena.execute([&] {
    const int64_t grain = std::max<int64_t>(1, n / (4 * threads));
    tbb::parallel_for(
        tbb::blocked_range<int64_t>(0, n, grain),
        [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); },
        tbb::static_partitioner());
  });
}

}  // namespace sparq
