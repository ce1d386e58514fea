// The 2:4 table kernels (int8 on vpdpbusd, bf16 on vdpbf16ps): the packed layout (round trip,
// chunk-major entries, violations), the per-slice tables (the vector builder against the
// portable one byte for byte, and the portable one against the definition through the
// activation layouts' own token orders), and the layer against sparse/reference with every
// epilogue, residual and output type, on shapes with partial row groups, calls, units, chunks
// and token slices. Natively where the CPU has AVX-512 VNNI / BF16, else under the emulator.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>

#include "emulator.hpp"
#include "jit/code_runner.hpp"
#include "jit/nm_table_kernel.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/int8_block_pack.hpp"
#include "sparse/nm_table_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/nm_table_build.hpp"
#include "src/nm_table_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

using sparse::NmTableType;

// A 2:4 fp32 weight whose kept values are dropped with probability `extra` (blocks with 0 or 1).
std::vector<float> two_of_four(int64_t out, int64_t in, double extra, uint32_t seed) {
  auto w =
      sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), seed), out, in, 2, 4);
  std::mt19937 rng(seed + 1);
  std::bernoulli_distribution drop(extra);
  for (float& v : w)
    if (v != 0.0f && drop(rng)) v = 0.0f;
  return w;
}

std::vector<int8_t> two_of_four_s8(int64_t out, int64_t in, double extra, uint32_t seed) {
  const auto f = two_of_four(out, in, extra, seed);
  std::mt19937 rng(seed + 2);
  std::uniform_int_distribution<int> value(-127, 127);
  std::vector<int8_t> w(f.size(), 0);
  for (size_t i = 0; i < f.size(); ++i)
    if (f[i] != 0.0f) {
      int v = 0;
      while (v == 0) v = value(rng);
      w[i] = static_cast<int8_t>(v);
    }
  return w;
}

std::vector<float> rounded_to_bf16(std::vector<float> w) {
  for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
  return w;
}

constexpr std::pair<int64_t, int64_t> kPackShapes[] = {
    {1, 4}, {3, 70}, {9, 128}, {5, 203}, {33, 300}};

TEST(NmTablePack, Int8RoundTripCompensationAndChunkMajorEntries) {
  for (auto [out, in] : kPackShapes) {
    SCOPED_TRACE(testing::Message() << out << "x" << in);
    const auto w = two_of_four_s8(out, in, 0.2, static_cast<uint32_t>(out * in));
    const auto scale = test::random_floats(static_cast<size_t>(out), 2, 0.01f, 0.1f);
    const auto bias = test::random_floats(static_cast<size_t>(out), 3);
    const auto p = sparse::pack_int8_2of4_table(w.data(), scale.data(), bias.data(), out, in);
    EXPECT_EQ(sparse::to_dense_int8(p), w);
    EXPECT_EQ(p.units, (in + 7) / 8);
    EXPECT_EQ(p.groups(), (out + 3) / 4);
    EXPECT_EQ(static_cast<int64_t>(p.entries.size()), p.groups() * p.units * 24);
    ASSERT_EQ(static_cast<int64_t>(p.compensation.size()), p.groups() * 4);
    for (int64_t r = 0; r < p.groups() * 4; ++r) {
      int32_t sum = 0;
      for (int64_t c = 0; r < out && c < in; ++c) sum += w[r * in + c];
      EXPECT_EQ(p.compensation[r], 128 * sum) << "row " << r;
      EXPECT_EQ(p.bias[r], r < out ? bias[r] : 0.0f) << "row " << r;
      EXPECT_EQ(p.scales[r], r < out ? scale[r] : 0.0f) << "row " << r;
    }
    // Every (group, unit) has its own entry, and a chunk's entries are contiguous per group.
    std::set<int64_t> seen;
    for (int64_t g = 0; g < p.groups(); ++g)
      for (int64_t u = 0; u < p.units; ++u) {
        seen.insert(p.entry_index(g, u));
        if (u % sparse::nm_table_chunk_units(p.type) != 0) {
          EXPECT_EQ(p.entry_index(g, u), p.entry_index(g, u - 1) + 1);
        }
      }
    EXPECT_EQ(static_cast<int64_t>(seen.size()), p.groups() * p.units);
    EXPECT_EQ(*seen.rbegin(), p.groups() * p.units - 1);
  }
}

TEST(NmTablePack, Bf16RoundTrip) {
  for (auto [out, in] : kPackShapes) {
    SCOPED_TRACE(testing::Message() << out << "x" << in);
    const auto w = two_of_four(out, in, 0.2, static_cast<uint32_t>(out + in));
    const auto p = sparse::pack_bf16_2of4_table(w.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense_bf16(p), rounded_to_bf16(w));
    EXPECT_EQ(p.units, (in + 3) / 4);
    EXPECT_TRUE(p.compensation.empty());
    EXPECT_TRUE(p.scales.empty());
  }
}

TEST(NmTablePack, NotTwoOfFourIsRefused) {
  std::vector<float> bad(2 * 8, 0.0f);
  bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = 1.0f;
  EXPECT_THROW_WITH(sparse::pack_bf16_2of4_table(bad.data(), nullptr, 2, 8), InvalidArgument,
                    "row 1");
  std::vector<int8_t> bad8(bad.begin(), bad.end());
  const std::vector<float> scale(2, 1.0f);
  EXPECT_THROW_WITH(sparse::pack_int8_2of4_table(bad8.data(), scale.data(), nullptr, 2, 8),
                    InvalidArgument, "not 2:4");
}

// The table against its definition, through the activation layouts (not the builder's own
// formulas): in combination c's vector q, lane L, dword j sits token 16L + 4q + j.
TEST(NmTableBuild, PortableTableHoldsTheCombinationsInLaneOrder) {
  const int64_t in = 21, tokens = 64;
  const auto x = test::random_floats(static_cast<size_t>(tokens * in), 9, -2, 2);
  // int8: quads_u8 slices of q + 128.
  std::vector<int8_t> xq(x.size());
  std::vector<float> scales(static_cast<size_t>(tokens));
  sparse::quantize_rows(x.data(), tokens, in, xq.data(), scales.data());
  std::vector<uint8_t> slice(static_cast<size_t>(64 * in));
  std::vector<float> lane_scales(64);
  sparse::layout_activations(xq.data(), scales.data(), tokens, in, sparse::Int8Layout::quads_u8,
                             slice.data(), lane_scales.data());
  const int64_t units8 = (in + 7) / 8;
  std::vector<uint8_t> table(
      static_cast<size_t>(units8 * sparse::nm_table_unit_bytes(NmTableType::int8)));
  sparse::build_nm_table_reference(NmTableType::int8, 4, slice.data(), in, 0, units8, table.data());
  auto q_at = [&](int64_t t, int64_t c) -> uint8_t {
    return c < in ? static_cast<uint8_t>(xq[t * in + c] + 128) : 0;
  };
  for (int64_t u = 0; u < units8; ++u)
    for (int c = 0; c < 36; ++c)
      for (int q = 0; q < 4; ++q)
        for (int lane = 0; lane < 4; ++lane)
          for (int j = 0; j < 4; ++j) {
            const int64_t t = 16 * lane + 4 * q + j;
            const uint8_t* dword =
                table.data() + u * 36 * 256 + c * 256 + 64 * q + 16 * lane + 4 * j;
            const int p0 = c / 6, p1 = c % 6;
            const int64_t cols[4] = {8 * u + sparse::kNmPairColumns[p0][0],
                                     8 * u + sparse::kNmPairColumns[p0][1],
                                     8 * u + 4 + sparse::kNmPairColumns[p1][0],
                                     8 * u + 4 + sparse::kNmPairColumns[p1][1]};
            for (int k = 0; k < 4; ++k)
              ASSERT_EQ(dword[k], q_at(t, cols[k])) << "u=" << u << " c=" << c << " t=" << t;
          }
  // bf16: the bf16 kernel's slices.
  std::vector<uint16_t> slice16(static_cast<size_t>(sparse::bf16_activation_elements(tokens, in)));
  sparse::layout_bf16_activations(x.data(), tokens, in, slice16.data());
  const int64_t units16 = (in + 3) / 4;
  std::vector<uint8_t> table16(
      static_cast<size_t>(units16 * sparse::nm_table_unit_bytes(NmTableType::bf16)));
  sparse::build_nm_table_reference(NmTableType::bf16, 4,
                                   reinterpret_cast<const uint8_t*>(slice16.data()), in, 0, units16,
                                   table16.data());
  for (int64_t u = 0; u < units16; ++u)
    for (int c = 0; c < 6; ++c)
      for (int q = 0; q < 4; ++q)
        for (int lane = 0; lane < 4; ++lane)
          for (int j = 0; j < 4; ++j) {
            const int64_t t = 16 * lane + 4 * q + j;
            uint16_t got[2];
            std::memcpy(got, table16.data() + u * 6 * 256 + c * 256 + 64 * q + 16 * lane + 4 * j,
                        4);
            for (int k = 0; k < 2; ++k) {
              const int64_t col = 4 * u + sparse::kNmPairColumns[c][k];
              const uint16_t want = col < in ? sparse::to_bf16(x[t * in + col]) : 0;
              ASSERT_EQ(got[k], want) << "u=" << u << " c=" << c << " t=" << t << " k=" << k;
            }
          }
}

// Short bf16 slices (16 or 32 tokens in token order): in combination c's vector q, lane L,
// dword j sits token 4 Q L + 4 q + j.
TEST(NmTableBuild, ShortBf16SlicesHoldTheirTokensInLaneOrder) {
  const int64_t in = 13;
  for (int quarters : {1, 2}) {
    const int64_t tokens = 16 * quarters - 3;  // padding tokens too
    SCOPED_TRACE(testing::Message() << "quarters " << quarters);
    const auto x = test::random_floats(static_cast<size_t>(tokens * in), 19, -2, 2);
    std::vector<uint16_t> slice(static_cast<size_t>(in * 16 * quarters));
    sparse::layout_bf16_natural(x.data(), tokens, in, 16 * quarters, slice.data());
    const int64_t units = (in + 3) / 4;
    std::vector<uint8_t> table(
        static_cast<size_t>(units * sparse::nm_table_unit_bytes(NmTableType::bf16, quarters)));
    sparse::build_nm_table_reference(NmTableType::bf16, quarters,
                                     reinterpret_cast<const uint8_t*>(slice.data()), in, 0, units,
                                     table.data());
    for (int64_t u = 0; u < units; ++u)
      for (int c = 0; c < 6; ++c)
        for (int q = 0; q < quarters; ++q)
          for (int lane = 0; lane < 4; ++lane)
            for (int j = 0; j < 4; ++j) {
              const int64_t t = 4 * quarters * lane + 4 * q + j;
              uint16_t got[2];
              std::memcpy(
                  got, table.data() + (u * 6 + c) * 64 * quarters + 64 * q + 16 * lane + 4 * j, 4);
              for (int k = 0; k < 2; ++k) {
                const int64_t col = 4 * u + sparse::kNmPairColumns[c][k];
                const uint16_t want = col < in && t < tokens ? sparse::to_bf16(x[t * in + col]) : 0;
                ASSERT_EQ(got[k], want) << "u=" << u << " c=" << c << " t=" << t << " k=" << k;
              }
            }
  }
  std::vector<uint8_t> any(1 << 16);
  EXPECT_THROW_WITH(
      sparse::build_nm_table_reference(NmTableType::int8, 2, any.data(), 8, 0, 1, any.data()),
      InvalidArgument, "4 quarters");
}

TEST(NmTableBuild, VectorBuilderMatchesPortable) {
  if (jit::best_float_isa() < jit::Isa::avx512)
    GTEST_SKIP() << "this CPU runs the portable builder itself (no AVX-512)";
  for (NmTableType type : {NmTableType::int8, NmTableType::bf16})
    for (int quarters : {1, 2, 4}) {
      if (type == NmTableType::int8 && quarters != 4) continue;
      for (int64_t in : {8, 29, 64, 300}) {
        SCOPED_TRACE(testing::Message()
                     << "type " << int(type) << " quarters " << quarters << " in=" << in);
        const int64_t units =
            (in + sparse::nm_table_unit_columns(type) - 1) / sparse::nm_table_unit_columns(type);
        // Any bytes will do: the builder only moves them.
        AlignedVector<uint8_t> slice(
            static_cast<size_t>(in * sparse::nm_table_column_bytes(type, quarters)));
        std::mt19937 rng(static_cast<uint32_t>(in));
        for (uint8_t& b : slice) b = static_cast<uint8_t>(rng());
        for (auto [u0, u1] : {std::pair<int64_t, int64_t>{0, units}, {units / 2, units}, {0, 1}}) {
          const auto bytes =
              static_cast<size_t>((u1 - u0) * sparse::nm_table_unit_bytes(type, quarters));
          AlignedVector<uint8_t> a(bytes, 0xcd), b(bytes, 0xab);
          build_nm_table(type, quarters, slice.data(), in, u0, u1, a.data());
          sparse::build_nm_table_reference(type, quarters, slice.data(), in, u0, u1, b.data());
          EXPECT_EQ(a, b) << "units " << u0 << ".." << u1;
        }
      }
    }
}

struct LayerCase {
  int64_t out, in, tokens;
  int threads;
};

// The layer against sparse/reference: fp32, int8 (int8 layers) and bf16 output.
void check_layer(NmTableType type, const LayerCase& s, Activation act, bool residual,
                 uint32_t seed) {
  SCOPED_TRACE(testing::Message() << s.out << "x" << s.in << " tokens=" << s.tokens
                                  << " threads=" << s.threads << " act=" << to_string(act)
                                  << " residual=" << residual);
  const auto bias = test::random_floats(static_cast<size_t>(s.out), seed);
  const auto x = test::random_floats(static_cast<size_t>(s.tokens * s.in), seed + 1, -2, 2);
  const auto res = test::random_floats(static_cast<size_t>(s.tokens * s.out), seed + 2);
  const sparse::Epilogue e{bias.data(), act, residual ? res.data() : nullptr};
  const float* r = residual ? res.data() : nullptr;
  std::vector<float> got(static_cast<size_t>(s.tokens * s.out), -12345.0f);
  std::vector<uint16_t> got16(got.size());
  if (type == NmTableType::int8) {
    const auto w = two_of_four_s8(s.out, s.in, 0.1, seed + 3);
    const auto w_scale = test::random_floats(static_cast<size_t>(s.out), seed + 4, 0.001f, 0.02f);
    const auto want =
        test::reference_int8_on(x, s.tokens, s.in, w.data(), w_scale.data(), s.out, e);
    const NmTableLinear layer(w.data(), w_scale.data(), bias.data(), s.out, s.in, act, s.threads);
    QuantizedInput::Impl q;
    layer.quantize(x.data(), s.tokens, q);
    layer.run(q, got.data(), 0.0f, r);
    test::expect_close(got, want, 2e-5, "fp32");
    std::vector<int8_t> got8(want.size());
    layer.run(q, got8.data(), 0.02f, r);
    test::expect_requantized(got8, want, 0.02f);
    layer.run(q, got16.data(), 0.0f, r, true);
    for (size_t i = 0; i < want.size(); ++i) got[i] = sparse::from_bf16(got16[i]);
    test::expect_close(got, want, 1e-2, "bf16 out");
  } else {
    const auto w = rounded_to_bf16(two_of_four(s.out, s.in, 0.1, seed + 3));
    std::vector<float> want(got.size());
    sparse::linear_bf16(x.data(), s.tokens, sparse::to_bf16(w).data(), s.out, s.in, e, want.data());
    const NmTableLinear layer(w.data(), bias.data(), s.out, s.in, act, s.threads);
    layer.run(x.data(), s.tokens, got.data(), r);
    test::expect_close(got, want, 2e-6 * std::sqrt(double(s.in)) + 2e-5, "fp32");
    layer.run(x.data(), s.tokens, got16.data(), r, true);
    for (size_t i = 0; i < want.size(); ++i) got[i] = sparse::from_bf16(got16[i]);
    test::expect_close(got, want, 1e-2, "bf16 out");
  }
}

const char* type_name(NmTableType type) { return type == NmTableType::int8 ? "int8" : "bf16"; }

// Both kernels under the emulator even where the CPU runs them natively (the instructions a
// CPU without AVX-512 meets only there: vpshufd/vbroadcasti32x4 weights, table loads at
// register offsets). Declared before the native tests: a kernel generated natively earlier in
// the same process would be reused (ctest runs each test in a process of its own).
TEST(NmTableEmulated, BothKernelsMatchTheReference) {
  if (!test::emulator::available())
    GTEST_SKIP() << "the emulator is unavailable: " << test::emulator::unavailable_reason();
  static const jit::CodeRunner runner{test::emulator::cpu().features, &test::emulator::call, true};
  const jit::CodeRunner* previous = jit::set_code_runner(&runner);
  const uint64_t calls = test::emulator::call_count();
  for (NmTableType type : {NmTableType::int8, NmTableType::bf16}) {
    SCOPED_TRACE(type_name(type));
    check_layer(type, {9, 150, 70, 1}, Activation::gelu_erf, true, 11);
    check_layer(type, {9, 40, 20, 1}, Activation::none, false, 12);
  }
  jit::set_code_runner(previous);
  if (test::emulator::call_count() == calls)
    GTEST_SKIP() << "the kernels were generated natively earlier in this process";
}

class NmTableLayerTest : public ::testing::TestWithParam<NmTableType> {};

TEST_P(NmTableLayerTest, MatchesReference) {
  const NmTableType type = GetParam();
  const jit::CpuFeatures needs = jit::nm_table_features(type);
  if (const std::string why = test::lane_skip_reason(needs); !why.empty()) GTEST_SKIP() << why;
  test::announce_lane(std::string(type_name(type)) + " 2:4 table kernel", needs);
  // Partial groups (out % 4), calls (out % 32), units (in % 8, in % 4), several chunks (int8:
  // 16 units, bf16: 24), partial token slices, two threads.
  // bf16 tokens 1, 17, 80 (64 + 16) and 96 (64 + 32) end on 16- and 32-token tiles.
  const LayerCase cases[] = {{5, 6, 1, 1},      {37, 70, 64, 1},  {64, 264, 100, 2},
                             {300, 136, 17, 2}, {8, 780, 130, 1}, {40, 72, 80, 2},
                             {33, 100, 96, 1}};
  uint32_t seed = 70;
  for (const LayerCase& c : cases)
    for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                           Activation::gelu_erf, Activation::silu})
      for (bool residual : {false, true}) check_layer(type, c, act, residual, seed += 5);
}

INSTANTIATE_TEST_SUITE_P(BothTypes, NmTableLayerTest,
                         ::testing::Values(NmTableType::int8, NmTableType::bf16),
                         [](const auto& p) { return std::string(type_name(p.param)); });

TEST(NmTableKernel, BadKeysAreRefused) {
  if (jit::can_run(jit::nm_table_features(NmTableType::bf16))) {
    EXPECT_THROW(jit::nm_table_kernel({NmTableType::bf16, Activation::none, jit::Operand::none,
                                       jit::TileOutput::s8}),
                 NotSupported);
    EXPECT_THROW_WITH(jit::nm_table_kernel({NmTableType::bf16, Activation::none, jit::Operand::none,
                                            jit::TileOutput::f32, 3}),
                      NotSupported, "not 3");
  }
  if (jit::can_run(jit::nm_table_features(NmTableType::int8))) {
    EXPECT_THROW_WITH(jit::nm_table_kernel({NmTableType::int8, Activation::none, jit::Operand::none,
                                            jit::TileOutput::f32, 2}),
                      NotSupported, "not 2");
  }
  // A layer of the other type refuses the wrong call.
  if (jit::can_run(jit::nm_table_features(NmTableType::int8))) {
    const auto w = two_of_four_s8(8, 16, 0.0, 1);
    const std::vector<float> scale(8, 0.01f), x(16 * 2, 0.5f);
    const NmTableLinear layer(w.data(), scale.data(), nullptr, 8, 16, Activation::none, 1);
    std::vector<float> y(16);
    EXPECT_THROW_WITH(layer.run(x.data(), 2, y.data(), nullptr), InvalidArgument, "int8");
  }
}

}  // namespace
}  // namespace sparq
