// Generated code is never writable and executable at once: after every kernel family has been
// generated in every ISA variant (all of them assemble on any x86-64; only calling code the CPU
// lacks is refused), no mapping of the process is both writable and executable. The scanner is
// first shown to catch such a mapping, and a code generator left at xbyak's default (RWX).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <xbyak/xbyak.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "jit/f32_block_kernel.hpp"
#include "jit/f32_decode_kernel.hpp"
#include "jit/int8_block_kernel.hpp"
#include "jit/int8_decode_kernel.hpp"
#include "jit/int8_nm_decode_kernel.hpp"
#include "jit/int8_nm_prefill_kernel.hpp"
#include "jit/nm_table_kernel.hpp"
#include "jit/row_epilogue.hpp"

namespace sparq {
namespace {

// The lines of /proc/self/maps whose permissions hold both w and x.
std::vector<std::string> writable_code() {
  std::vector<std::string> found;
  FILE* f = std::fopen("/proc/self/maps", "r");
  if (!f) return {"/proc/self/maps could not be read"};
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long begin = 0, end = 0;
    char perms[8] = {};
    if (std::sscanf(line, "%llx-%llx %7s", &begin, &end, perms) == 3 && perms[1] == 'w' &&
        perms[2] == 'x')
      found.emplace_back(line);
  }
  std::fclose(f);
  return found;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l;
  return s;
}

TEST(CodePages, TheScannerCatchesWritableCode) {
  ASSERT_TRUE(writable_code().empty()) << joined(writable_code());
  void* page =
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) GTEST_SKIP() << "this system refuses writable+executable mappings";
  EXPECT_EQ(writable_code().size(), 1u) << joined(writable_code());
  munmap(page, 4096);
  {
    // xbyak's default protection: the buffer stays RWX for the generator's lifetime.
    Xbyak::CodeGenerator careless(4096);
    careless.ret();
    careless.ready();
    EXPECT_FALSE(writable_code().empty()) << "a generator left at RWX went unnoticed";
  }
  EXPECT_TRUE(writable_code().empty()) << joined(writable_code());
}

TEST(CodePages, EveryKernelFamilyLeavesNoWritableCode) {
  using namespace jit;
  std::vector<std::shared_ptr<const void>> kernels;
  auto keep = [&](auto kernel) {
    kernels.push_back(std::shared_ptr<const void>(std::move(kernel)));
  };
  for (Operand residual : {Operand::none, Operand::add, Operand::multiply}) {
    for (bool int8_out : {false, true}) {
      const Int8KernelKey key{Isa::avx2, Activation::gelu_erf, residual, int8_out};
      keep(make_int8_kernel_avx2(key));
      Int8KernelKey vnni = key;
      vnni.isa = Isa::avx512_vnni;
      keep(make_int8_kernel_avx512_vnni(vnni));
      vnni.quarters = 1;  // the 16-token tiles, both column gathers
      for (bool vbmi : {false, true}) {
        vnni.vbmi = vbmi;
        keep(make_int8_kernel_avx512_vnni(vnni));
      }
      for (int tokens = 1; tokens <= kNmPrefillTileTokens; ++tokens)
        keep(make_int8_nm_prefill_avx512_vnni({tokens, Activation::gelu_erf, residual, int8_out}));
      for (int tokens = 1; tokens <= 4; ++tokens) {
        const DecodeKernelKey d{Isa::avx2, tokens, Activation::silu, residual, int8_out};
        keep(make_int8_decode_avx2(d));
        DecodeKernelKey d512 = d;
        d512.isa = Isa::avx512_vnni;
        keep(make_int8_decode_avx512_vnni(d512));
        keep(make_int8_nm_decode_avx512_vnni(d512));
      }
    }
    for (F32Layout layout : {F32Layout::block_4x1, F32Layout::n2_m4, F32Layout::bf16_4x1}) {
      keep(make_f32_kernel_avx512({Isa::avx512, layout, Activation::relu, residual}));
      if (layout == F32Layout::block_4x1)
        keep(make_f32_kernel_avx2({Isa::avx2, layout, Activation::relu, residual}));
      if (layout == F32Layout::n2_m4)
        keep(make_f32_nm_kernel_avx2({Isa::avx2, layout, Activation::relu, residual}));
      if (layout != F32Layout::bf16_4x1) {
        F32KernelKey short_tiles{Isa::avx512, layout, Activation::relu, residual};
        short_tiles.quarters = 2;
        keep(make_f32_kernel_avx512(short_tiles));
      }
    }
    for (int tokens = 1; tokens <= 4; ++tokens)
      for (bool bf16 : {false, true}) {
        keep(make_f32_decode_avx2({Isa::avx2, tokens, bf16, Activation::gelu_tanh, residual}));
        for (bool two_of_four : {false, true})
          keep(make_f32_decode_avx512(
              {Isa::avx512, tokens, bf16, Activation::gelu_tanh, residual, two_of_four}));
      }
    for (auto type : {sparse::NmTableType::int8, sparse::NmTableType::bf16})
      for (int quarters : {1, 2, 4}) {
        if (type == sparse::NmTableType::int8 && quarters != 4) continue;
        keep(make_nm_table_kernel_avx512(
            {type, Activation::silu, residual, TileOutput::bf16, quarters}));
      }
  }
  // The row epilogues come from their cache, for the ISAs this CPU has.
  for (Isa isa : {Isa::avx2, Isa::avx512, Isa::avx512_vnni})
    if (can_run(isa))
      keep(row_epilogue({isa, Activation::gelu_erf, Operand::multiply, TileOutput::s8}));
  EXPECT_GT(kernels.size(), 100u);
  EXPECT_TRUE(writable_code().empty()) << joined(writable_code());
}

}  // namespace
}  // namespace sparq
