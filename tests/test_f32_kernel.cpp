// Every f32 4x1 tile-kernel variant against sparse::linear_f32 on randomized shapes with tails,
// sparsities from 0 to 100 %, and every epilogue option; the f32 packed layout round trip; the
// bf16-rounding activation layout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>

#include "jit/cpu_features.hpp"
#include "jit/f32_block_kernel.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/f32_block_pack.hpp"
#include "sparse/f32_nm_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/bf16_convert.hpp"
#include "src/f32_activation_layout.hpp"
#include "src/f32_tile_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

struct Case {
  int64_t out, in, tokens;
  double block_sparsity;
};

// An fp32 weight whose 4x1 blocks are zero with the given probability.
std::vector<float> block_sparse_weight(int64_t out, int64_t in, double sparsity, uint32_t seed) {
  auto w = test::random_floats(static_cast<size_t>(out * in), seed);
  test::zero_row_blocks(w, out, in, 4, sparsity, seed + 1);
  return w;
}

// A 2:4 weight; then each kept value is zeroed with probability `extra_sparsity` (blocks with
// fewer than 2 kept values, all-zero rows).
std::vector<float> two_of_four_weight(int64_t out, int64_t in, double extra_sparsity,
                                      uint32_t seed) {
  auto w =
      sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), seed), out, in, 2, 4);
  std::mt19937 rng(seed + 1);
  std::bernoulli_distribution zero(extra_sparsity);
  for (float& v : w)
    if (v != 0.0f && zero(rng)) v = 0.0f;
  return w;
}

using Variant = std::tuple<jit::Isa, jit::F32Layout>;

class F32KernelTest : public ::testing::TestWithParam<Variant> {
 protected:
  jit::Isa isa() const { return std::get<0>(GetParam()); }
  jit::F32Layout layout() const { return std::get<1>(GetParam()); }

  // The bf16 layout is reached through a bf16 layer (bf16-rounded weights, rounded inputs) that
  // requests it (F32TileLinear takes it where the CPU has AVX512_BF16).
  bool bf16() const { return layout() == jit::F32Layout::bf16_4x1; }

  void SetUp() override {
    if (bf16() && isa() != jit::Isa::avx512)
      GTEST_SKIP() << "the bf16 kernel is avx512 with AVX512_BF16 only";
    const jit::CpuFeatures needs = bf16() ? jit::bf16_features() : jit::features_of(isa());
    if (const std::string why = test::lane_skip_reason(needs); !why.empty()) GTEST_SKIP() << why;
    test::announce_lane(
        std::string(bf16() ? "bf16" : "f32") + " block kernels, " + jit::isa_name(isa()), needs);
  }

  F32TileLinear layer(const std::vector<float>& w, const float* bias, int64_t out, int64_t in,
                      jit::PostOps act) const {
    F32TileLinear l(w.data(), bias, out, in, layout(), act, isa(), 1, bf16());
    EXPECT_EQ(l.layout(), layout());
    return l;
  }

  std::vector<float> weight(int64_t out, int64_t in, double sparsity, uint32_t seed) const {
    auto w = layout() == jit::F32Layout::n2_m4 ? two_of_four_weight(out, in, sparsity, seed)
                                               : block_sparse_weight(out, in, sparsity, seed);
    if (bf16())
      for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
    return w;
  }

  void check(const Case& c, Activation act, jit::Operand residual, uint32_t seed,
             const std::vector<float>* given_w = nullptr) {
    SCOPED_TRACE(testing::Message() << "out=" << c.out << " in=" << c.in << " tokens=" << c.tokens
                                    << " sparsity=" << c.block_sparsity << " act=" << to_string(act)
                                    << " operand=" << static_cast<int>(residual));
    const auto w = given_w ? *given_w : weight(c.out, c.in, c.block_sparsity, seed);
    const auto bias = test::random_floats(static_cast<size_t>(c.out), seed + 3);
    const auto x = test::random_floats(static_cast<size_t>(c.tokens * c.in), seed + 4, -2, 2);
    const auto res = test::random_floats(static_cast<size_t>(c.tokens * c.out), seed + 6);

    std::vector<float> want(static_cast<size_t>(c.tokens * c.out));
    const sparse::Epilogue e{bias.data(), act,
                             residual != jit::Operand::none ? res.data() : nullptr,
                             jit::operand_op(residual)};
    if (bf16())
      sparse::linear_bf16(x.data(), c.tokens, sparse::to_bf16(w).data(), c.out, c.in, e,
                          want.data());
    else
      sparse::linear_f32(x.data(), c.tokens, w.data(), c.out, c.in, e, want.data());
    const F32TileLinear l = layer(w, bias.data(), c.out, c.in, {act, jit::operand_op(residual)});
    std::vector<float> got(want.size(), -12345.0f);
    l.run(x.data(), c.tokens, got.data(), residual != jit::Operand::none ? res.data() : nullptr);
    // Sums of up to `in` products in another order: relative to the magnitude of the terms.
    test::expect_close(got, want, 2e-6 * std::sqrt(static_cast<double>(c.in)) + 1e-6,
                       "fp32 output");
  }
};

TEST_P(F32KernelTest, RandomShapesWithTails) {
  uint32_t seed = 100;
  for (const auto& [out, in, tokens, sparsity] : test::kTileShapes)
    check({out, in, tokens, sparsity}, Activation::none, jit::Operand::none, seed++);
}

TEST_P(F32KernelTest, SparsityExtremes) {
  for (double s : {0.0, 0.5, 0.9, 0.99, 1.0})
    check({36, 80, 45, s}, Activation::none, jit::Operand::none, 7);
}

TEST_P(F32KernelTest, OneDenseRowGroupAmongEmptyOnes) {
  const Case c{40, 50, 33, 1.0};
  auto w = weight(c.out, c.in, 1.0, 3);
  const auto row = weight(1, c.in, 0.0, 4);  // as dense as the layout allows
  std::copy(row.begin(), row.end(), w.begin() + 21 * c.in);
  check(c, Activation::none, jit::Operand::none, 5, &w);
}

TEST_P(F32KernelTest, EveryEpilogue) {
  uint32_t seed = 300;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (const Case& c : {Case{12, 24, 16, 0.6}, Case{13, 40, 70, 0.8}, Case{64, 40, 64, 0.7}})
        check(c, act, residual, seed++);
}

// The JIT activations over their whole range (tails of exp, erf, the sign switch, zero):
// an identity weight (4x1-sparse and 2:4) passes chosen values straight into the epilogue.
TEST_P(F32KernelTest, ActivationsOverTheirRange) {
  const int64_t n = 16;
  std::vector<float> w(static_cast<size_t>(n * n), 0.0f);
  for (int64_t i = 0; i < n; ++i) w[i * n + i] = 1.0f;
  const float values[] = {-100.f, -30.f, -9.f, -3.f, -1.f, -0.5f, -1e-3f, 0.f,
                          1e-3f,  0.5f,  1.f,  3.f,  9.f,  30.f,  100.f,  2.5f};
  std::vector<float> x(static_cast<size_t>(n * n));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < n; ++i)
      x[t * n + i] = values[(t + i) % n] * (1.0f + 0.01f * static_cast<float>(t));
  for (Activation act :
       {Activation::relu, Activation::gelu_tanh, Activation::gelu_erf, Activation::silu}) {
    const F32TileLinear l = layer(w, nullptr, n, n, act);
    std::vector<float> got(x.size());
    l.run(x.data(), n, got.data(), nullptr);
    for (size_t i = 0; i < x.size(); ++i) {
      const float v = bf16() ? sparse::from_bf16(sparse::to_bf16(x[i])) : x[i];
      EXPECT_NEAR(got[i], sparse::activate(v, act), 2e-6 * (1.0 + std::fabs(v)))
          << to_string(act) << " x=" << v;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllVariants, F32KernelTest,
    ::testing::Combine(::testing::Values(jit::Isa::reference, jit::Isa::avx2, jit::Isa::avx512),
                       ::testing::Values(jit::F32Layout::block_4x1, jit::F32Layout::n2_m4,
                                         jit::F32Layout::bf16_4x1)),
    [](const auto& param) {
      const jit::F32Layout l = std::get<1>(param.param);
      return std::string(jit::isa_name(std::get<0>(param.param))) +
             (l == jit::F32Layout::n2_m4      ? "_2of4"
              : l == jit::F32Layout::bf16_4x1 ? "_bf16_4x1"
                                              : "_4x1");
    });

TEST(F32KernelGeneration, EveryKeyGenerates) {
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (bool prefetch : {false, true})
        for (auto layout : {jit::F32Layout::block_4x1, jit::F32Layout::n2_m4}) {
          std::unique_ptr<jit::F32BlockKernel> kernel;
          EXPECT_NO_THROW(kernel = jit::make_f32_kernel_avx2(
                              {jit::Isa::avx2, layout, act, residual, prefetch}));
          ASSERT_NE(kernel, nullptr);
          EXPECT_EQ(kernel->tile_tokens(), 16);
          EXPECT_EQ(kernel->name(),
                    layout == jit::F32Layout::n2_m4 ? "jit:f32-2:4:avx2" : "jit:f32-4x1:avx2");
          for (bool bf16_out : {false, true}) {
            jit::F32KernelKey key{jit::Isa::avx512, layout, act, residual, prefetch};
            key.bf16_output = bf16_out;
            EXPECT_NO_THROW(kernel = jit::make_f32_kernel_avx512(key));
            ASSERT_NE(kernel, nullptr);
            EXPECT_TRUE(kernel->stores_partial_tiles());
          }
        }
  if (!jit::can_run(jit::Isa::avx512)) {
    EXPECT_THROW(jit::f32_block_kernel({jit::Isa::avx512}), NotSupported);
  }
}

TEST(F32Pack, RoundTripAndCounts) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {7, 9}, {64, 33}}) {
    const auto w = block_sparse_weight(out, in, 0.7, static_cast<uint32_t>(out + in));
    const auto p = sparse::pack_f32_4x1(w.data(), nullptr, out, in, 16);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    int64_t blocks = 0;
    for (int64_t g = 0; g < (out + 3) / 4; ++g)
      for (int64_t c = 0; c < in; ++c) {
        bool nz = false;
        for (int64_t r = g * 4; r < std::min(out, g * 4 + 4); ++r) nz |= w[r * in + c] != 0.0f;
        blocks += nz;
      }
    EXPECT_EQ(p.nonzero_blocks, blocks);
    EXPECT_EQ(p.group_begin.back(), blocks);
  }
  EXPECT_THROW(sparse::pack_f32_4x1(nullptr, nullptr, 4, 4, 16), InvalidArgument);
}

TEST(F32Pack, TwoOfFourRoundTripAndViolation) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {5, 7}, {9, 16}, {64, 33}}) {
    const auto w = two_of_four_weight(out, in, 0.3, static_cast<uint32_t>(out * in));
    const auto p = sparse::pack_f32_2of4(w.data(), nullptr, out, in, 16);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    EXPECT_EQ(p.blocks_per_group, (in + 3) / 4);
    // 40 bytes per 4 rows x 4 columns: 62.5 % of the dense fp32 bytes.
    EXPECT_EQ(static_cast<int64_t>(p.entries.size()),
              ((out + 3) / 4) * p.blocks_per_group * 40 + 8 * 40);
  }
  std::vector<float> bad(4 * 8, 0.0f);
  bad[1 * 8 + 4] = bad[1 * 8 + 5] = bad[1 * 8 + 7] = 1.0f;  // row 1, columns 4..7: 3 non-zeros
  EXPECT_THROW(sparse::pack_f32_2of4(bad.data(), nullptr, 4, 8, 16), InvalidArgument);
}

TEST(F32Pack, ActivationLayoutPlacesEveryTokenAndPadsWithZeros) {
  const int64_t tokens = 19, in = 5;
  const auto x = test::random_floats(static_cast<size_t>(tokens * in), 1);
  std::vector<float> laid(static_cast<size_t>(sparse::f32_activation_floats(tokens, in, 16)), 7.f);
  ASSERT_EQ(laid.size(), static_cast<size_t>(32 * in));
  sparse::layout_f32_activations(x.data(), tokens, in, 16, false, laid.data());
  for (int64_t s = 0; s < 2; ++s)
    for (int64_t i = 0; i < in; ++i)
      for (int slot = 0; slot < 16; ++slot) {
        const int64_t t = s * 16 + sparse::f32_slice_token(16, slot);
        const float want = t < tokens ? x[t * in + i] : 0.0f;
        EXPECT_EQ(laid[(s * in + i) * 16 + slot], want) << "t=" << t << " i=" << i;
      }
  sparse::layout_f32_activations(x.data(), tokens, in, 16, true, laid.data());
  for (int slot = 0; slot < 16; ++slot) {
    const int64_t t = sparse::f32_slice_token(16, slot);
    EXPECT_EQ(laid[slot], sparse::from_bf16(sparse::to_bf16(x[t * in])));
  }
}

TEST(Bf16Convert, VectorPathMatchesScalar) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  auto v = test::random_floats(203, 9, -1e4f, 1e4f);
  v[0] = std::numeric_limits<float>::quiet_NaN();
  v[1] = -std::numeric_limits<float>::infinity();
  v[2] = 1.00390625f;  // exactly between two bf16 values: ties to even
  v[3] = -0.0f;
  v[4] = std::numeric_limits<float>::max();
  std::vector<uint16_t> got(v.size());
  detail::convert_to_bf16_avx2(v.data(), got.data(), static_cast<int64_t>(v.size()));
  EXPECT_EQ(got, sparse::to_bf16(v));
  if (!jit::isa_available(jit::Isa::avx512)) return;
  // The AVX-512 variant, 16 lanes and a masked tail, for every length up to 203.
  for (size_t n = 0; n <= v.size(); n += n < 40 ? 1 : 27) {
    std::vector<uint16_t> wide(n + 1, 0xabcd);
    detail::convert_to_bf16_avx512(v.data(), wide.data(), static_cast<int64_t>(n));
    EXPECT_EQ(std::vector<uint16_t>(wide.begin(), wide.begin() + static_cast<long>(n)),
              sparse::to_bf16(std::vector<float>(v.begin(), v.begin() + static_cast<long>(n))))
        << n;
    EXPECT_EQ(wide[n], 0xabcd) << "wrote past " << n;
  }
}

TEST(Bf16Pack, RoundTripPairsAndCounts) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {7, 9}, {64, 33}, {5, 130}}) {
    auto w = block_sparse_weight(out, in, 0.7, static_cast<uint32_t>(out * 3 + in));
    for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
    const auto p = sparse::pack_bf16_4x1(w.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    int64_t blocks = 0, entries = 0;
    for (int64_t g = 0; g < (out + 3) / 4; ++g) {
      int64_t group_blocks = 0;
      for (int64_t c = 0; c < in; ++c) {
        bool nz = false;
        for (int64_t r = g * 4; r < std::min(out, g * 4 + 4); ++r) nz |= w[r * in + c] != 0.0f;
        group_blocks += nz;
      }
      blocks += group_blocks;
      entries += (group_blocks + 1) / 2;  // pairs of columns, a short last pair
    }
    EXPECT_EQ(p.nonzero_blocks, blocks);
    EXPECT_EQ(p.group_begin.back(), entries);
  }
  EXPECT_THROW(sparse::pack_bf16_4x1(nullptr, nullptr, 4, 4), InvalidArgument);
}

TEST(Bf16Pack, VectorLayoutMatchesPortableAndPlacesEveryToken) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (auto [tokens, in] :
       {std::pair<int64_t, int64_t>{1, 3}, {16, 8}, {19, 13}, {64, 64}, {70, 17}, {130, 771}}) {
    auto x =
        test::random_floats(static_cast<size_t>(tokens * in), static_cast<uint32_t>(in), -3, 3);
    x[0] = std::numeric_limits<float>::quiet_NaN();
    x.back() = -std::nanf("");
    if (x.size() > 3) {
      x[1] = 1e-39f;  // a denormal: kept, as sparse::to_bf16 keeps it
      x[2] = -std::numeric_limits<float>::infinity();
    }
    const size_t n = static_cast<size_t>(sparse::bf16_activation_elements(tokens, in));
    std::vector<uint16_t> a(n, 1), b(n, 2);
    detail::layout_bf16_activations_avx2(x.data(), tokens, in, a.data());
    sparse::layout_bf16_activations(x.data(), tokens, in, b.data());
    EXPECT_EQ(a, b) << "tokens=" << tokens << " in=" << in;
    if (jit::isa_available(jit::Isa::avx512)) {
      std::vector<uint16_t> c(n, 3);
      detail::layout_bf16_activations_avx512(x.data(), tokens, in, c.data());
      EXPECT_EQ(c, b) << "avx512 tokens=" << tokens << " in=" << in;
    }
    for (int64_t s = 0; s * 64 < tokens; ++s)
      for (int64_t i = 0; i < in; ++i)
        for (int slot = 0; slot < 64; ++slot) {
          const int64_t t = s * 64 + sparse::bf16_slice_token(slot);
          const uint16_t want = t < tokens ? sparse::to_bf16(x[t * in + i]) : 0;
          ASSERT_EQ(b[static_cast<size_t>((s * in + i) * 64 + slot)], want)
              << "t=" << t << " i=" << i;
        }
  }
}

TEST(F32Pack, VectorLayoutMatchesPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (int slice : {16, 32, 64})
    for (bool bf16 : {false, true})
      for (auto [tokens, in] :
           {std::pair<int64_t, int64_t>{1, 3}, {16, 8}, {19, 13}, {33, 64}, {130, 771}}) {
        auto x =
            test::random_floats(static_cast<size_t>(tokens * in), static_cast<uint32_t>(in), -3, 3);
        x[0] = std::numeric_limits<float>::quiet_NaN();
        x.back() = -std::numeric_limits<float>::infinity();
        const size_t n = static_cast<size_t>(sparse::f32_activation_floats(tokens, in, slice));
        std::vector<float> a(n, 1.0f), b(n, 2.0f);
        detail::layout_f32_activations_avx2(x.data(), tokens, in, slice, bf16, a.data());
        sparse::layout_f32_activations(x.data(), tokens, in, slice, bf16, b.data());
        // Compare bits: NaN != NaN as floats.
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)))
            << "slice=" << slice << " tokens=" << tokens << " in=" << in << " bf16=" << bf16;
      }
}

}  // namespace
}  // namespace sparq
