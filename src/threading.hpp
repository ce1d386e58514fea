// Thread pools for sparq's kernels: a oneTBB arena per thread count, shared process-wide.
#pragma once

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace sparq {

// Cores available to this process.
int hardware_threads();
// 0 -> all cores; negative -> InvalidArgument.
int resolve_threads(int requested);
// The process-wide arena of pool `pool` for a thread count (made on first use; takes a lock: call
// at pack time). Layers and models of one pool and thread count share an arena; independent
// instances of a model (LinearOptions / EncoderOptions / DecoderOptions::pool) use different
// pools, so that their calls do not queue on one arena's threads.
tbb::task_arena& arena_for(int threads, int pool = 0);

// Where a layer takes its threads from: a thread count (resolved: >= 1) and a pool. Converts
// from a bare count (pool 0) on purpose: most callers have only that.
struct PoolRef {
  PoolRef(int threads_, int pool_ = 0) : threads(threads_), pool(pool_) {}  // NOLINT
  int threads, pool;
};
inline tbb::task_arena& arena_for(const PoolRef& p) { return arena_for(p.threads, p.pool); }

// Pins the threads that work in the arena of (threads, pool) to `cpus` as they enter it (a oneTBB
// observer; the thread that calls into the arena pins itself). Returns false, pinning nothing,
// where the OS refuses (a CPU outside this process's affinity mask).
bool pin_pool(int threads, int pool, const std::vector<int>& cpus);
// Pins the calling thread to `cpus`; false where the OS refuses.
bool pin_this_thread(const std::vector<int>& cpus);
// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus();

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
