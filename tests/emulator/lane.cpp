#include "lane.hpp"

#include <cstdio>
#include <mutex>
#include <set>

#include "emulator.hpp"
#include "jit/code_runner.hpp"

namespace sparq::test {
namespace {

std::string& not_installed_reason() {
  static std::string reason = "the emulator lane was not set up (install_emulator_lane)";
  return reason;
}

}  // namespace

std::string install_emulator_lane() {
  static const jit::CodeRunner* runner = nullptr;
  if (runner) return "emulator already installed";
  if (!emulator::available()) {
    not_installed_reason() = "the emulator is unavailable: " + emulator::unavailable_reason();
    return "sparq kernel lane: native " + jit::cpu_features().names() + "; " +
           not_installed_reason();
  }
  const jit::CpuFeatures& features = emulator::cpu().features;
  if (jit::cpu_features().covers(features)) {
    not_installed_reason() = "this CPU has every feature the emulator has";
    return "sparq kernel lane: every variant runs natively (" + jit::cpu_features().names() + ")";
  }
  runner = new jit::CodeRunner{features, &emulator::call, false};
  jit::set_code_runner(runner);
  return "sparq kernel lane: native " + jit::cpu_features().names() + "; the rest under " +
         emulator::cpu().summary();
}

std::string lane_skip_reason(const jit::CpuFeatures& needed) {
  if (jit::can_run(needed)) return "";
  return "this CPU lacks some of " + needed.names() + " and " + not_installed_reason();
}

const char* lane_mode(const jit::CpuFeatures& needed) {
  return jit::cpu_features().covers(needed) ? "native" : "emulated";
}

void announce_lane(const std::string& what, const jit::CpuFeatures& needed) {
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lock(mutex);
  if (!said.insert(what).second) return;
  std::printf("[   lane   ] %s: %s\n", what.c_str(), lane_mode(needed));
  std::fflush(stdout);
}

}  // namespace sparq::test
