// The process's peak resident memory so far, from the OS (getrusage: the high-water mark of the
// resident set), for the tools' "loaded in ..." lines.
#pragma once

#include <sys/resource.h>

namespace sparq::bench {

// MiB; 0 where the OS does not say.
inline double peak_resident_mib() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace sparq::bench
