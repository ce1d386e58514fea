// How generated code is called. Directly, unless the code needs features this CPU lacks and a
// code runner that has them is installed: test support installs one that runs x86-64 code under
// an instruction-set emulator (tests/emulator/), so the kernel tests execute the AVX-512 kernels
// on an AVX2 machine. The library itself never installs a runner.
#pragma once

#include <atomic>

#include "jit/cpu_features.hpp"

namespace sparq::jit {

// The entry of generated code: one pointer argument (a struct of kernel arguments), System V.
using CodeEntry = void (*)(const void*);

struct CodeRunner {
  CpuFeatures features;  // what code run through it may use
  void (*call)(CodeEntry entry, const void* args);
  // Also run code this CPU could run itself (the lane's own checks on an AVX-512 machine).
  bool everything = false;
};

namespace detail {
inline std::atomic<const CodeRunner*> code_runner{nullptr};
}

// Installs `runner` for the whole process (nullptr: none) and returns the previous one. Code
// generated while a runner is installed keeps the decision made then (see Generator::finalize);
// the runner must outlive the code generated through it.
inline const CodeRunner* set_code_runner(const CodeRunner* runner) {
  return detail::code_runner.exchange(runner, std::memory_order_acq_rel);
}
inline const CodeRunner* code_runner() {
  return detail::code_runner.load(std::memory_order_acquire);
}

}  // namespace sparq::jit
