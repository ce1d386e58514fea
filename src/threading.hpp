// Thread pools for sparq's kernels: a oneTBB arena per thread count, shared process-wide.
#pragma once

#include <cstdint>
#include <functional>

namespace sparq {

// Cores available to this process.
int hardware_threads();
// 0 -> all cores; negative -> InvalidArgument.
int resolve_threads(int requested);

// Runs body(begin, end) over [0, n) split into contiguous ranges on `threads` threads (the caller's
// thread included). With one thread, or n == 1, it runs inline.
void parallel_ranges(int threads, int64_t n, const std::function<void(int64_t, int64_t)>& body);

}  // namespace sparq
