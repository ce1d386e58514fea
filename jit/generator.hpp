// The base of every sparq code generator: an xbyak CodeGenerator with the System V frame
// (callee-saved registers pushed and popped) and a typed entry point.
#pragma once

#include <xbyak/xbyak.h>

#include <cstddef>

namespace sparq::jit {

class Generator : public Xbyak::CodeGenerator {
 public:
  // The buffer is writable while code is emitted and read+execute after finalize(): never both.
  explicit Generator(size_t max_code_bytes = 64 * 1024)
      : Xbyak::CodeGenerator(max_code_bytes, Xbyak::DontSetProtectRWE) {}

  // The generated function takes one pointer argument (a struct of kernel arguments).
  using Entry = void (*)(const void*);
  Entry entry() const { return getCode<Entry>(); }

 protected:
  // Resolves labels and makes the code read+execute.
  void finalize() {
    ready();
    setProtectModeRE();  // ready() alone sets protection only for auto-growing buffers
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
  const Xbyak::Reg64* saved() const {
    static const Xbyak::Reg64 regs[kSavedCount] = {rbx, rbp, r12, r13, r14, r15};
    return regs;
  }
};

}  // namespace sparq::jit
