// Machine numbers the decode benchmark prints beside its own: the last-level cache size and the
// memory copy bandwidth, measured in the same run.
#pragma once

#include <cstdint>

namespace sparq::bench {

// Bytes of the largest data cache (sysfs, else sysconf); 32 MiB when neither says.
int64_t last_level_cache_bytes();

// STREAM-style copy bandwidth in GB/s (bytes read + bytes written per second) of a buffer far
// larger than the caches: the median of several memcpy passes, one thread.
double copy_bandwidth_gbps();

}  // namespace sparq::bench
