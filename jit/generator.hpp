// The base of every sparq code generator: an xbyak CodeGenerator with the System V frame
// (callee-saved registers pushed and popped) and a typed entry point.
#pragma once

#include <xbyak/xbyak.h>

#include <cstddef>
#include <string>

#include "jit/code_runner.hpp"
#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"

namespace sparq::jit {

class Generator : public Xbyak::CodeGenerator {
 public:
  // The buffer is writable while code is emitted and read+execute after finalize(): never both.
  explicit Generator(size_t max_code_bytes = 64 * 1024)
      : Xbyak::CodeGenerator(max_code_bytes, Xbyak::DontSetProtectRWE) {}

  // The generated function takes one pointer argument (a struct of kernel arguments).
  using Entry = CodeEntry;
  Entry entry() const { return getCode<Entry>(); }
  // Calls the generated code on `args`: directly, or through the code runner chosen at
  // finalize() when this CPU lacks what the code needs.
  void run(const void* args) const {
    if (runner_) [[unlikely]]
      run_elsewhere(args);
    else
      entry()(args);
  }

 protected:
  // Resolves labels and makes the code read+execute. `needs`: the features the code uses; where
  // this CPU lacks one, calls go through the installed code runner (NotSupported if there is
  // none that has them).
  void finalize(const CpuFeatures& needs) {
    ready();
    setProtectModeRE();  // ready() alone sets protection only for auto-growing buffers
    const CodeRunner* runner = code_runner();
    const bool native = cpu_features().covers(needs);
    if (runner && runner->everything && runner->features.covers(needs)) {
      runner_ = runner;
    } else if (!native) {
      // Code this CPU cannot run may still be generated (the tests assemble every variant
      // everywhere); only calling it is refused.
      const bool runs = runner && runner->features.covers(needs);
      runner_ = runs ? runner : &kNoRunner;
      if (!runs) missing_ = needs.names();
    }
  }

  static constexpr int kSavedCount = 6;
  // rdi holds the argument pointer on entry (System V).
  void preamble() {
    for (int i = 0; i < kSavedCount; ++i) push(saved()[i]);
  }
  void postamble() {
    for (int i = kSavedCount - 1; i >= 0; --i) pop(saved()[i]);
    vzeroupper();
    ret();
  }

 private:
  // Marks code that needs features this CPU lacks, with no runner that has them.
  static constexpr CodeRunner kNoRunner{{}, nullptr};

  void run_elsewhere(const void* args) const {
    if (runner_ == &kNoRunner)
      throw NotSupported("generated code needs " + missing_ + "; this CPU has " +
                         cpu_features().names() + " and no emulator is installed");
    runner_->call(entry(), args);
  }

  const CodeRunner* runner_ = nullptr;
  std::string missing_;
  const Xbyak::Reg64* saved() const {
    static const Xbyak::Reg64 regs[kSavedCount] = {rbx, rbp, r12, r13, r14, r15};
    return regs;
  }
};

}  // namespace sparq::jit
