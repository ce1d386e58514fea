// With SPARQ_LOG_PLANS set (to anything but 0), the libraries' tuned choices are written to stderr
// as they are made (cuSPARSELt's searched algorithm, cuBLASLt's timed candidates), so that a
// benchmark's numbers can be read with what each side ran.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sparq::gpu {

inline bool plan_log_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SPARQ_LOG_PLANS");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

inline void plan_log(const std::string& line) {
  if (plan_log_enabled()) std::fprintf(stderr, "sparq plan: %s\n", line.c_str());
}

}  // namespace sparq::gpu
