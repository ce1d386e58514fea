// The kernel tests' execution lane: each ISA variant runs natively where this CPU has its
// features, otherwise under the instruction-set emulator (emulator.hpp), otherwise it is skipped
// with the reason. Linked into the kernel test executables with lane_main.cpp, which installs the
// emulator as the process's code runner before any test runs.
#pragma once

#include <string>

#include "jit/cpu_features.hpp"

namespace sparq::test {

// Installs the emulator as jit's code runner when this CPU lacks a feature the emulator has and
// the emulator can be loaded. Returns a line saying what was done (printed by lane_main.cpp).
std::string install_emulator_lane();

// "" when code needing `needed` runs in this process; else why not (for GTEST_SKIP).
std::string lane_skip_reason(const jit::CpuFeatures& needed);
inline std::string lane_skip_reason(jit::Isa isa) {
  return lane_skip_reason(jit::features_of(isa));
}

// "native" or "emulated": how code needing `needed` runs here (requires it to run).
const char* lane_mode(const jit::CpuFeatures& needed);
inline const char* lane_mode(jit::Isa isa) { return lane_mode(jit::features_of(isa)); }

// Prints "[ lane ] WHAT: native|emulated" once per WHAT and process.
void announce_lane(const std::string& what, const jit::CpuFeatures& needed);

}  // namespace sparq::test
