// The f32/bf16 decode kernels (16x1 blocks, rows in vector lanes) against the reference of their
// dtype: random shapes with tails, token counts 1..9 (more than 4 run in steps), sparsities 0..100
// %, every epilogue; the JIT equal to the portable twin bit for bit without an activation; the
// layout's round trip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include "jit/cpu_features.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/f32_decode_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/f32_decode_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

std::vector<float> decode_weight(int64_t out, int64_t in, double block_sparsity, bool bf16,
                                 uint32_t seed) {
  auto w = test::random_floats(static_cast<size_t>(out * in), seed);
  std::mt19937 rng(seed + 1);
  std::bernoulli_distribution zero_block(block_sparsity), zero_value(0.3);
  for (int64_t g = 0; g < (out + 15) / 16; ++g)
    for (int64_t c = 0; c < in; ++c) {
      const bool block = zero_block(rng);
      for (int64_t r = g * 16; r < std::min(out, g * 16 + 16); ++r)
        if (block || zero_value(rng)) w[r * in + c] = 0.0f;
    }
  if (bf16)
    for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
  return w;
}

class F32DecodeTest : public ::testing::TestWithParam<std::tuple<jit::Isa, bool>> {
 protected:
  jit::Isa isa() const { return std::get<0>(GetParam()); }
  bool bf16() const { return std::get<1>(GetParam()); }
  void SetUp() override {
    if (const std::string why = test::lane_skip_reason(isa()); !why.empty()) GTEST_SKIP() << why;
    test::announce_lane(
        std::string(bf16() ? "bf16" : "f32") + " decode kernels, " + jit::isa_name(isa()),
        jit::features_of(isa()));
  }

  void check(int64_t out, int64_t in, int64_t tokens, double sparsity, Activation act,
             bool residual, uint32_t seed) {
    SCOPED_TRACE(testing::Message() << "out=" << out << " in=" << in << " tokens=" << tokens
                                    << " sparsity=" << sparsity << " act=" << to_string(act)
                                    << " residual=" << residual);
    const auto w = decode_weight(out, in, sparsity, bf16(), seed);
    const auto bias = test::random_floats(static_cast<size_t>(out), seed + 3);
    const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed + 4, -2, 2);
    const auto res = test::random_floats(static_cast<size_t>(tokens * out), seed + 6);
    const float* r = residual ? res.data() : nullptr;
    std::vector<float> want(static_cast<size_t>(tokens * out));
    if (bf16())
      sparse::linear_bf16(x.data(), tokens, sparse::to_bf16(w).data(), out, in,
                          {bias.data(), act, r}, want.data());
    else
      sparse::linear_f32(x.data(), tokens, w.data(), out, in, {bias.data(), act, r}, want.data());
    F32DecodeLinear layer(w.data(), bias.data(), out, in, bf16(), act, isa(), 1);
    std::vector<float> got(want.size(), -12345.0f);
    layer.run(x.data(), tokens, got.data(), r);
    test::expect_close(got, want, 2e-6 * std::sqrt(static_cast<double>(in)) + 1e-6, "y");
    // The AVX2 variant sums in the portable twin's order; the AVX-512 one in four chains.
    if (act == Activation::none && isa() == jit::Isa::avx2) {
      F32DecodeLinear twin(w.data(), bias.data(), out, in, bf16(), act, jit::Isa::reference, 1);
      std::vector<float> portable(want.size());
      twin.run(x.data(), tokens, portable.data(), r);
      EXPECT_EQ(got, portable) << "the JIT and its portable twin sum in the same order";
    }
  }
};

TEST_P(F32DecodeTest, RandomShapesAndTokenCounts) {
  uint32_t seed = 10;
  for (auto [out, in] :
       {std::pair<int64_t, int64_t>{16, 8}, {1, 1}, {17, 33}, {45, 130}, {64, 257}})
    for (int64_t tokens : {1, 2, 3, 4, 5, 9})
      check(out, in, tokens, 0.6, Activation::none, false, seed++);
}

TEST_P(F32DecodeTest, SparsityExtremesAndEpilogues) {
  for (double s : {0.0, 0.5, 1.0}) check(70, 90, 3, s, Activation::none, false, 7);
  uint32_t seed = 300;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (bool residual : {false, true})
      // 1..4: every kernel key (tokens per call x activation x residual); 7 runs in two steps.
      for (int64_t tokens : {1, 2, 3, 4, 7}) check(37, 50, tokens, 0.5, act, residual, seed++);
}

// 2:4 weights on the 2:4 decode layout (AVX-512 and the portable twin), rows and columns with
// tails (in not a multiple of 4: the padded activations), every epilogue.
TEST_P(F32DecodeTest, TwoOfFourLayout) {
  if (isa() == jit::Isa::avx2) GTEST_SKIP() << "the 2:4 decode layout has no avx2 kernel";
  uint32_t seed = 500;
  for (auto [out, in] : {std::pair<int64_t, int64_t>{16, 8}, {1, 3}, {33, 70}, {45, 131}})
    for (int64_t tokens : {1, 3, 4, 7})
      for (Activation act : {Activation::none, Activation::silu})
        for (bool residual : {false, true}) {
          SCOPED_TRACE(testing::Message()
                       << "2:4 out=" << out << " in=" << in << " tokens=" << tokens
                       << " act=" << to_string(act) << " residual=" << residual);
          auto w = sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), seed++),
                                     out, in, 2, 4);
          if (bf16())
            for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
          const auto bias = test::random_floats(static_cast<size_t>(out), seed++);
          const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed++, -2, 2);
          const auto res = test::random_floats(static_cast<size_t>(tokens * out), seed++);
          const float* r = residual ? res.data() : nullptr;
          std::vector<float> want(static_cast<size_t>(tokens * out));
          if (bf16())
            sparse::linear_bf16(x.data(), tokens, sparse::to_bf16(w).data(), out, in,
                                {bias.data(), act, r}, want.data());
          else
            sparse::linear_f32(x.data(), tokens, w.data(), out, in, {bias.data(), act, r},
                               want.data());
          F32DecodeLinear layer(w.data(), bias.data(), out, in, bf16(), act, isa(), 1, true);
          EXPECT_NE(layer.kernel_name().find("2:4-decode"), std::string::npos);
          std::vector<float> got(want.size(), -12345.0f);
          layer.run(x.data(), tokens, got.data(), r);
          test::expect_close(got, want, 2e-6 * std::sqrt(static_cast<double>(in)) + 1e-6, "y");
        }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, F32DecodeTest,
                         ::testing::Combine(::testing::Values(jit::Isa::reference, jit::Isa::avx2,
                                                              jit::Isa::avx512),
                                            ::testing::Values(false, true)),
                         [](const auto& p) {
                           return std::string(jit::isa_name(std::get<0>(p.param))) +
                                  (std::get<1>(p.param) ? "_bf16" : "_f32");
                         });

TEST(F32DecodePack, TwoOfFourRoundTripAndViolation) {
  for (bool bf16 : {false, true})
    for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {17, 9}, {40, 70}}) {
      auto w = sparse::prune_n_m(
          test::random_floats(static_cast<size_t>(out * in), static_cast<uint32_t>(out * in)), out,
          in, 2, 4);
      if (bf16)
        for (float& v : w) v = sparse::from_bf16(sparse::to_bf16(v));
      const auto p = sparse::pack_f32_2of4_decode(w.data(), nullptr, out, in, bf16);
      EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in << " bf16=" << bf16;
      EXPECT_EQ(p.padded_in(), (in + 3) / 4 * 4);
      EXPECT_EQ(static_cast<int64_t>(p.entries.size()),
                (out + 15) / 16 * ((in + 3) / 4) * (bf16 ? 80 : 144));
    }
  std::vector<float> bad(2 * 8, 0.0f);
  bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = 1.0f;
  EXPECT_THROW_WITH(sparse::pack_f32_2of4_decode(bad.data(), nullptr, 2, 8, false), InvalidArgument,
                    "row 1");
}

TEST(F32DecodePack, RoundTripAndBytes) {
  for (bool bf16 : {false, true})
    for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {17, 9}, {40, 70}}) {
      const auto w = decode_weight(out, in, 0.5, bf16, static_cast<uint32_t>(out + in));
      const auto p = sparse::pack_f32_decode(w.data(), nullptr, out, in, bf16);
      EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in << " bf16=" << bf16;
      EXPECT_EQ(static_cast<int64_t>(p.entries.size()), p.nonzero_blocks * (bf16 ? 36 : 68));
    }
}

}  // namespace
}  // namespace sparq
