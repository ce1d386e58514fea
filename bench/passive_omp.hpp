// oneDNN (Debian's build threads with OpenMP) leaves its OpenMP workers spinning after each call,
// and they steal the cores sparq's own threads need next. libgomp reads OMP_WAIT_POLICY when it
// loads, so the tools set it and start again (execv returns only on failure: then they run as
// they are).
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace sparq::bench {

inline void restart_with_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);
}

}  // namespace sparq::bench
