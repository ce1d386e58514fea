// Test support (not part of libsparq): runs x86-64 code under an instruction-set emulator, so
// the kernel tests can execute JIT kernels for ISAs the machine lacks (AVX-512 VNNI / BF16 on an
// AVX2 machine). The emulator is Bochs 3.0's CPU as packaged by bochscpu-python 0.4.0 (PyPI; put
// into a cache virtual environment by scripts/emulator-deps.sh); only its C functions are used,
// from this process, without a Python interpreter.
//
// How a call runs: one emulated CPU (model Sapphire Rapids: AVX-512 F/DQ/BW/VL/VNNI/BF16/FP16, no
// AMX) in 64-bit long mode whose guest virtual addresses are the host's (2 MiB guest pages onto
// per-GiB windows of guest physical space; each 4 KiB guest page is backed by the host's own page
// the first time it is touched), so the pointers in an argument block and the absolute addresses
// xbyak embeds just
// work and outputs land in host memory. fn(arg) is called System V style (rdi = arg) on a stack of
// its own, returning to an unmapped sentinel whose fetch fault ends the run. A fault (#UD, #PF,
// #GP, ...), a touch of host memory that is not mapped, a callee-saved register not restored or a
// stack left unbalanced becomes an EmulationError naming what and where.
//
// Where the module is found: $SPARQ_EMULATOR_SO (the .so itself), else the bochscpu package in
// $SPARQ_EMULATOR_VENV, else in ${XDG_CACHE_HOME:-$HOME/.cache}/sparq/emulator-venv. The shim
// library it needs is built with the tests ($SPARQ_EMULATOR_SHIM overrides its path).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "jit/cpu_features.hpp"

namespace sparq::test::emulator {

class EmulationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What the emulated CPU reports in CPUID (read by running cpuid under emulation) and allows in
// XCR0.
struct EmulatedCpu {
  std::string model;  // e.g. "sapphire_rapids (Bochs cpu.model 30)"
  // What code run under emulation may use (the features sparq tracks). AMX stays off whatever
  // CPUID says: the wheel's Bochs raises #UD on tile instructions.
  jit::CpuFeatures features;
  bool avx512dq = false, avx512_fp16 = false;  // reported, unused by sparq's kernels
  std::string summary() const;
};

// Loads the emulator on first use (thread-safe); false, with the reason, when it cannot be had.
bool available();
const std::string& unavailable_reason();
// The emulated CPU's features. Requires available().
const EmulatedCpu& cpu();

// Runs fn(arg) under emulation and returns when fn returns. Calls are serialized (one emulated
// CPU per process). Throws EmulationError on any fault, and std::logic_error if !available().
void call(void (*fn)(const void*), const void* arg);

// Emulated calls made so far in this process.
uint64_t call_count();

}  // namespace sparq::test::emulator
