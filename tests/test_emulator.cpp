// The emulator lane itself (tests/emulator/): the emulated CPU computes what the instructions
// sparq's kernels use compute, faults become errors naming what happened, and a deliberately
// broken kernel run through the lane fails the comparison with its reference.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <xbyak/xbyak.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "emulator.hpp"
#include "jit/bf16_sparse_input_kernel.hpp"
#include "jit/code_runner.hpp"
#include "jit/int8_sparse_input_kernel.hpp"
#include "lane.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bf16_sparse_input_pack.hpp"
#include "sparse/int8_sparse_input_pack.hpp"
#include "sparse/reference.hpp"
#include "src/activation_quant.hpp"
#include "src/int8_block_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

namespace emu = test::emulator;

#define SKIP_WITHOUT_EMULATOR() \
  if (!emu::available())        \
  GTEST_SKIP() << "the emulator is unavailable: " << emu::unavailable_reason()

// A small program: emitted by `body` (rdi = argument pointer), then ret.
class Program : public Xbyak::CodeGenerator {
 public:
  template <class Body>
  explicit Program(Body body) : Xbyak::CodeGenerator(4096) {
    body(*this);
    ret();
    ready();
  }
  void (*entry() const)(const void*) { return getCode<void (*)(const void*)>(); }
};

TEST(Emulator, ReportsTheSapphireRapidsFeatures) {
  SKIP_WITHOUT_EMULATOR();
  const emu::EmulatedCpu& cpu = emu::cpu();
  std::printf("emulated CPU: %s\n", cpu.summary().c_str());
  EXPECT_TRUE(cpu.features.covers(jit::bf16_features())) << cpu.summary();
  EXPECT_TRUE(cpu.features.avx512_vnni) << "cpu.model was not set to Sapphire Rapids";
  EXPECT_TRUE(cpu.avx512dq && cpu.avx512_fp16) << cpu.summary();
  EXPECT_FALSE(cpu.features.amx_tile) << "AMX is not executed, whatever CPUID says";
}

// vpdpbusd (u8 x s8, the 4x1 kernel's multiply-add) with a masked merge and zmm16-31.
TEST(Emulator, VnniDotProductsMatchScalar) {
  SKIP_WITHOUT_EMULATOR();
  struct Args {
    uint8_t a[64];
    int8_t b[64];
    int32_t acc[16];
    int32_t out[16];
  } args{};
  for (int i = 0; i < 64; ++i) {
    args.a[i] = static_cast<uint8_t>(i * 37 + 11);
    args.b[i] = static_cast<int8_t>(i * 53 - 90);
  }
  for (int i = 0; i < 16; ++i) args.acc[i] = 1000 * i - 7000;
  Program p([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.vmovdqu32(zmm17, g.ptr[rdi + offsetof(Args, acc)]);
    g.vmovdqu8(zmm20, g.ptr[rdi + offsetof(Args, a)]);
    g.mov(eax, 0x7fff);  // lane 15 keeps its accumulator
    g.kmovw(k3, eax);
    g.vpdpbusd(zmm17 | k3, zmm20, g.ptr[rdi + offsetof(Args, b)]);
    g.vmovdqu32(g.ptr[rdi + offsetof(Args, out)], zmm17);
    g.vzeroupper();
  });
  emu::call(p.entry(), &args);
  for (int lane = 0; lane < 16; ++lane) {
    int32_t want = args.acc[lane];
    if (lane < 15)
      for (int k = 0; k < 4; ++k) want += int32_t{args.a[4 * lane + k]} * args.b[4 * lane + k];
    EXPECT_EQ(args.out[lane], want) << "lane " << lane;
  }
}

// vdpbf16ps (the bf16 kernel's multiply-add, register operands as the kernel has them) and
// vcvtneps2bf16, against fp32 arithmetic. Known emulator defects, which sparq's kernels avoid:
// vdpbf16ps with a memory operand at a displacement ([reg + d]) reads the wrong elements, and
// vcvtne2ps2bf16 gets the upper half of its result wrong.
TEST(Emulator, Bf16DotProductsMatchScalar) {
  SKIP_WITHOUT_EMULATOR();
  struct Args {
    uint16_t a[32], b[32];
    float acc[16], out[16];
    float wide[16];
    uint16_t narrow[16];
  } args{};
  const auto values = test::random_floats(96, 5, -4.0f, 4.0f);
  for (int i = 0; i < 32; ++i) {
    args.a[i] = sparse::to_bf16(values[i]);
    args.b[i] = sparse::to_bf16(values[32 + i]);
  }
  for (int i = 0; i < 16; ++i) {
    args.acc[i] = values[64 + i];
    args.wide[i] = values[80 + i] * 1.2345f;
  }
  Program p([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.vmovups(zmm1, g.ptr[rdi + offsetof(Args, acc)]);
    g.vmovdqu16(zmm2, g.ptr[rdi + offsetof(Args, a)]);
    g.vmovdqu16(zmm4, g.ptr[rdi + offsetof(Args, b)]);
    g.vdpbf16ps(zmm1, zmm2, zmm4);
    g.vmovups(g.ptr[rdi + offsetof(Args, out)], zmm1);
    g.vcvtneps2bf16(ymm3, g.ptr[rdi + offsetof(Args, wide)]);
    g.vmovdqu16(g.ptr[rdi + offsetof(Args, narrow)], ymm3);
    g.vzeroupper();
  });
  emu::call(p.entry(), &args);
  for (int lane = 0; lane < 16; ++lane) {
    const float want =
        args.acc[lane] + sparse::from_bf16(args.a[2 * lane]) * sparse::from_bf16(args.b[2 * lane]) +
        sparse::from_bf16(args.a[2 * lane + 1]) * sparse::from_bf16(args.b[2 * lane + 1]);
    EXPECT_NEAR(args.out[lane], want, 1e-5f * (1 + std::fabs(want))) << "lane " << lane;
    EXPECT_EQ(args.narrow[lane], sparse::to_bf16(args.wide[lane])) << "lane " << lane;
  }
}

TEST(Emulator, AmxIsReportedAsUndefinedOpcode) {
  SKIP_WITHOUT_EMULATOR();
  alignas(64) uint8_t config[64] = {1};
  Program p([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.ldtilecfg(g.ptr[rdi]);
  });
  try {
    emu::call(p.entry(), config);
    ADD_FAILURE() << "ldtilecfg ran under emulation";
  } catch (const emu::EmulationError& e) {
    EXPECT_NE(std::string(e.what()).find("#UD"), std::string::npos) << e.what();
  }
}

TEST(Emulator, UnmappedMemoryIsAnError) {
  SKIP_WITHOUT_EMULATOR();
  Program p([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.mov(rax, 0x10);  // the null page
    g.mov(rax, g.ptr[rax]);
  });
  try {
    emu::call(p.entry(), nullptr);
    ADD_FAILURE() << "a load from address 0x10 went unnoticed";
  } catch (const emu::EmulationError& e) {
    EXPECT_NE(std::string(e.what()).find("not mapped"), std::string::npos) << e.what();
  }
  // The emulator is still usable after a failed call.
  int32_t x = 0;
  Program ok([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.mov(g.dword[rdi], 42);
  });
  emu::call(ok.entry(), &x);
  EXPECT_EQ(x, 42);
}

TEST(Emulator, BrokenCallingConventionIsAnError) {
  SKIP_WITHOUT_EMULATOR();
  Program clobbers([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.xor_(r12, r12);
  });
  EXPECT_THROW(emu::call(clobbers.entry(), nullptr), emu::EmulationError);
  Program unbalanced([](Xbyak::CodeGenerator& g) {
    using namespace Xbyak::util;
    g.mov(rax, g.ptr[rsp]);  // the return address...
    g.push(rax);             // ...pushed again: ret returns with rsp 8 bytes low
  });
  EXPECT_THROW(emu::call(unbalanced.entry(), nullptr), emu::EmulationError);
}

// ---- a deliberately broken kernel --------------------------------------------------------------
// A runner that emulates every generated call, optionally on a copy of the code in which each
// vpdpbusd (EVEX.512.66.0F38.W0 50) became vpdpwssd (... 52): the int8 kernel then multiplies
// the wrong pairs. The copy keeps the code's offsets, so its rip-relative constants still resolve.
std::atomic<bool> g_break{false};
std::atomic<int> g_patched{0};

const uint8_t* mutated_copy(const uint8_t* entry) {
  static std::mutex mutex;
  static std::map<const uint8_t*, const uint8_t*> copies;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = copies.find(entry); it != copies.end()) return it->second;
  // The mapping holding the code, from /proc/self/maps.
  uintptr_t begin = 0, end = 0;
  if (FILE* f = std::fopen("/proc/self/maps", "r")) {
    unsigned long long b, e;
    char perms[8];
    char line[512];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "%llx-%llx %7s", &b, &e, perms) == 3 &&
          reinterpret_cast<uintptr_t>(entry) >= b && reinterpret_cast<uintptr_t>(entry) < e) {
        begin = b;
        end = e;
      }
    std::fclose(f);
  }
  if (begin == 0) throw std::runtime_error("generated code not found in /proc/self/maps");
  const size_t bytes = end - begin;
  void* copy = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (copy == MAP_FAILED) throw std::runtime_error("mmap failed");
  auto* c = static_cast<uint8_t*>(copy);
  std::memcpy(c, reinterpret_cast<const void*>(begin), bytes);
  for (size_t i = 0; i + 5 < bytes; ++i)
    if (c[i] == 0x62 && (c[i + 1] & 0x0f) == 0x02 && (c[i + 2] & 0x87) == 0x05 &&
        (c[i + 3] & 0x60) == 0x40 && c[i + 4] == 0x50) {  // L'L = 10: 512 bits
      c[i + 4] = 0x52;
      g_patched.fetch_add(1);
    }
  const uint8_t* moved = c + (entry - reinterpret_cast<const uint8_t*>(begin));
  copies.emplace(entry, moved);
  return moved;
}

void breaking_call(jit::CodeEntry entry, const void* args) {
  if (!g_break.load()) return emu::call(entry, args);
  const uint8_t* moved = mutated_copy(reinterpret_cast<const uint8_t*>(entry));
  emu::call(reinterpret_cast<jit::CodeEntry>(const_cast<uint8_t*>(moved)), args);
}

// The worst error of the avx512_vnni int8 4x1 layer against sparse::linear_int8.
double vnni_layer_error() {
  const int64_t out = 37, in = 70, tokens = 21;
  auto w = test::random_int8(static_cast<size_t>(out * in), 1);
  test::zero_row_blocks(w, out, in, 4, 0.6, 2);
  const auto w_scale = test::random_floats(static_cast<size_t>(out), 3, 0.001f, 0.02f);
  const auto bias = test::random_floats(static_cast<size_t>(out), 4);
  const auto xq = test::random_int8(static_cast<size_t>(tokens * in), 5);
  const auto x_scale = test::random_floats(static_cast<size_t>(tokens), 6, 0.001f, 0.05f);
  std::vector<float> want(static_cast<size_t>(tokens * out));
  sparse::linear_int8(xq.data(), x_scale.data(), tokens, w.data(), w_scale.data(), out, in,
                      {bias.data(), Activation::none, nullptr}, want.data());
  Int8BlockLinear layer(w.data(), w_scale.data(), bias.data(), out, in, Activation::none,
                        jit::Isa::avx512_vnni, 1);
  QuantizedInput::Impl q;
  q.reserve(activation_bytes(layer.layout(), tokens, in), activation_scale_count(tokens));
  sparse::layout_activations(xq.data(), x_scale.data(), tokens, in, layer.layout(), q.x.data(),
                             q.scales.data());
  q.form = QuantizedInput::Impl::Form::block_layout;
  q.layout = layer.layout();
  q.tokens = tokens;
  q.in = in;
  std::vector<float> got(want.size(), -12345.0f);
  layer.run(q, got.data(), 0.0f, nullptr);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(want[i])));
  return worst;
}

TEST(EmulatorLane, BrokenVnniKernelFailsItsReferenceCheck) {
  SKIP_WITHOUT_EMULATOR();
  // Every generated call of this test goes through the breaking runner, natively capable or not
  // (each test runs in its own process, so no kernel was generated before it).
  // (The layer's 16-token tiles use VBMI where it runs, which the emulated CPU has too.)
  static const jit::CodeRunner runner{jit::vbmi_features(), &breaking_call, true};
  const jit::CodeRunner* previous = jit::set_code_runner(&runner);
  const uint64_t calls = emu::call_count();
  g_break = false;
  const double intact = vnni_layer_error();
  EXPECT_GT(emu::call_count(), calls) << "the kernel did not run under emulation";
  EXPECT_LE(intact, 2e-5) << "the intact kernel disagrees with the reference under emulation";
  g_break = true;
  const double broken = vnni_layer_error();
  g_break = false;
  jit::set_code_runner(previous);
  EXPECT_GT(g_patched.load(), 0) << "no vpdpbusd found in the generated kernel";
  EXPECT_GT(broken, 1e-2) << "the broken kernel went unnoticed (worst error " << broken << ")";
}

// The sparse-input decode kernel (kmovq and popcnt from memory, vpexpandb with merge masking,
// byte/word unpacks, vpdpbusd) under emulation on every CPU, so that an emulated run on a machine
// without VBMI2 is known to compute what the native one does. (It caught a known emulator defect,
// which the kernel now avoids: vpexpandb with a memory source, zeroing or merging, places the
// wrong bytes; the register form is right.)
TEST(EmulatorLane, SparseInputKernelMatchesItsReference) {
  SKIP_WITHOUT_EMULATOR();
  if (!emu::cpu().features.covers(jit::vbmi2_features()))
    GTEST_SKIP() << "the emulated CPU lacks AVX512_VBMI2: " << emu::cpu().summary();
  static const jit::CodeRunner runner{jit::vbmi2_features(), &emu::call, true};
  const jit::CodeRunner* previous = jit::set_code_runner(&runner);
  const uint64_t calls = emu::call_count();
  const int64_t out = 200, in = 70;
  auto w = test::random_int8(static_cast<size_t>(out * in), 3);
  for (size_t i = 0; i < w.size(); i += 3) w[i] = 0;  // a third of the weights zero
  const std::vector<float> scale(static_cast<size_t>(out), 1.0f);
  std::vector<int32_t> columns;
  std::vector<int8_t> x;
  for (int32_t c = 0; c < in; c += 2) {  // every other input non-zero
    columns.push_back(c);
    x.push_back(static_cast<int8_t>(c * 7 % 255 - 127));
  }
  while (columns.size() % 4 != 0) {
    columns.push_back(0);
    x.push_back(0);
  }
  const auto count = static_cast<int64_t>(columns.size());
  columns.resize(columns.size() + 4 * jit::kSparseInputPrefetchQuads, 0);
  int32_t sum_x = 0;
  for (int8_t v : x) sum_x += v;
  for (bool masked : {false, true})
    for (int rows : {64, 256}) {
      const auto p =
          sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, out, in, masked, rows);
      std::vector<int32_t> want(static_cast<size_t>(p.padded_out()));
      sparse::sparse_input_reference(p, columns.data(), x.data(), count, 0, p.chunks(),
                                     want.data());
      AlignedVector<int32_t> got(want.size(), -1);
      jit::SparseInputArgs a{};
      a.entries = p.entries.data();
      a.chunk_base = masked ? static_cast<const void*>(p.offsets.data()) : p.entries.data();
      a.chunk_stride = masked ? in * 4 : in * rows;
      a.columns = columns.data();
      a.x = reinterpret_cast<const int32_t*>(x.data());
      a.quads = count / 4;
      a.chunks = p.chunks();
      a.acc = got.data();
      a.compensation = 128 * sum_x;
      // prefetch_lines 7: a key no other test generates natively in this process.
      jit::sparse_input_kernel({masked, rows, 7})->run(a);
      for (int64_t r = 0; r < out; ++r)
        ASSERT_EQ(got[static_cast<size_t>(r)], want[static_cast<size_t>(r)])
            << "masked=" << masked << " rows=" << rows << " row " << r;
    }
  // Long chunks (512 rows, sums in memory): the dense form from its second slice, the masked form
  // (256-row sub-entries, each found through its offset) from its second sub-entry.
  const int64_t long_out = 600;
  auto long_w = test::random_int8(static_cast<size_t>(long_out * in), 5);
  for (size_t i = 0; i < long_w.size(); i += 3) long_w[i] = 0;
  const std::vector<float> long_scale(static_cast<size_t>(long_out), 1.0f);
  for (bool masked : {false, true}) {
    const int rows = 512;
    const auto p = sparse::pack_int8_sparse_input(long_w.data(), long_scale.data(), nullptr,
                                                  long_out, in, masked, rows);
    std::vector<int32_t> want(static_cast<size_t>(p.padded_out()));
    sparse::sparse_input_reference(p, columns.data(), x.data(), count, 0, p.chunks(), want.data());
    const int64_t r0 = masked ? 256 : 64, n = masked ? 256 : 192;  // rows r0 .. r0 + n
    AlignedVector<int32_t> got(static_cast<size_t>(n), -1);
    jit::SparseInputArgs a{};
    a.entries = p.entries.data();
    if (masked) {
      a.chunk_base = p.offsets.data() + r0 / 256 * in;
      a.chunk_stride = in * 4;
    } else {
      a.chunk_base = p.entries.data() + p.entry_offset(0, 0) + r0;
      a.column_stride = p.stored_rows(0);
    }
    a.columns = columns.data();
    a.x = reinterpret_cast<const int32_t*>(x.data());
    a.quads = count / 4;
    a.chunks = 1;
    a.slices = n / 64;
    a.acc = got.data();
    a.compensation = 128 * sum_x;
    jit::sparse_input_kernel({masked, rows, 7})->run(a);
    for (int64_t r = r0; r < r0 + n; ++r)
      ASSERT_EQ(got[static_cast<size_t>(r - r0)], want[static_cast<size_t>(r)])
          << "long chunks, masked=" << masked << " row " << r;
  }
  EXPECT_GE(emu::call_count(), calls + 6) << "the kernels did not run under emulation";
  jit::set_code_runner(previous);
}

// The bf16 sparse-input kernel (vpexpandw, VBMI2; shifts, masks and FMAs) under the emulator
// against its reference, bit for bit: both forms, short and long chunks.
TEST(EmulatorLane, Bf16SparseInputKernelMatchesItsReference) {
  SKIP_WITHOUT_EMULATOR();
  const jit::CpuFeatures needs = jit::bf16_sparse_input_features({true, 64, 1});
  if (!emu::cpu().features.covers(needs))
    GTEST_SKIP() << "the emulated CPU lacks AVX512_VBMI2: " << emu::cpu().summary();
  static const jit::CodeRunner runner{needs, &emu::call, true};
  const jit::CodeRunner* previous = jit::set_code_runner(&runner);
  const uint64_t calls = emu::call_count();
  const int64_t out = 200, in = 70;
  auto w = test::random_floats(static_cast<size_t>(out * in), 3);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = i % 3 == 0 ? 0.0f : sparse::from_bf16(sparse::to_bf16(w[i]));
  std::vector<int32_t> columns;
  std::vector<float> x;
  for (int32_t c = 0; c < in; c += 2) {  // every other input non-zero
    columns.push_back(c);
    x.push_back(sparse::from_bf16(sparse::to_bf16(static_cast<float>(c % 13) * 0.25f - 1.4f)));
  }
  const auto count = static_cast<int64_t>(columns.size());
  columns.resize(columns.size() + jit::kBf16SparseInputListPadding, 0);
  // 512 rows: a long chunk (the dense form's pairs of inputs, the masked form's group loop over
  // one 256-row sub-entry).
  for (bool masked : {false, true})
    for (int rows : {64, 256, 512}) {
      const auto p = sparse::pack_bf16_sparse_input(w.data(), nullptr, out, in, masked, rows);
      std::vector<float> want(static_cast<size_t>(p.padded_out()));
      sparse::sparse_input_reference(p, columns.data(), x.data(), count, 0, p.chunks(),
                                     want.data());
      AlignedVector<float> got(want.size(), -1.0f);
      jit::Bf16SparseInputArgs a{};
      a.entries = p.entries.data();
      a.chunk_base = masked ? static_cast<const void*>(p.offsets.data()) : p.entries.data();
      a.chunk_stride = masked ? in * 4 : in * rows * 2;
      if (p.long_chunks()) {
        a.slices = (masked ? 256 : p.stored_rows(0)) / 32;
        a.column_stride = 2 * p.stored_rows(0);
      }
      a.columns = columns.data();
      a.x = x.data();
      a.count = count;
      a.chunks = p.long_chunks() ? 1 : p.chunks();
      a.acc = got.data();
      // prefetch_lines 7: a key no other test generates natively in this process.
      jit::bf16_sparse_input_kernel({masked, rows, 7})->run(a);
      for (int64_t r = 0; r < out; ++r)
        ASSERT_EQ(got[static_cast<size_t>(r)], want[static_cast<size_t>(r)])
            << "masked=" << masked << " rows=" << rows << " row " << r;
    }
  EXPECT_GE(emu::call_count(), calls + 6) << "the kernels did not run under emulation";
  jit::set_code_runner(previous);
}

}  // namespace
}  // namespace sparq
