// The int8 decode kernels (16x1 layout, rows in vector lanes, 1..4 tokens per call) against
// sparse::linear_int8: random shapes with tails, token counts 1..9 (more than 4 run in steps),
// sparsities 0..100 %, every epilogue, int8 output; the decode layout's round trip and limits.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "jit/cpu_features.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "sparse/reference.hpp"
#include "src/int8_decode_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

// An s8 weight whose 16x1 blocks are zero with probability `block_sparsity`, and whose kept
// blocks lose single values with probability 0.3 (blocks that are only partly non-zero).
std::vector<int8_t> decode_weight(int64_t out, int64_t in, double block_sparsity, uint32_t seed) {
  auto w = test::random_int8(static_cast<size_t>(out * in), seed);
  std::mt19937 rng(seed + 1);
  std::bernoulli_distribution zero_block(block_sparsity), zero_value(0.3);
  for (int64_t g = 0; g < (out + 15) / 16; ++g)
    for (int64_t c = 0; c < in; ++c) {
      const bool block = zero_block(rng);
      for (int64_t r = g * 16; r < std::min(out, g * 16 + 16); ++r)
        if (block || zero_value(rng)) w[r * in + c] = 0;
    }
  return w;
}

class Int8DecodeTest : public ::testing::TestWithParam<jit::Isa> {
 protected:
  void SetUp() override {
    if (const std::string why = test::lane_skip_reason(GetParam()); !why.empty())
      GTEST_SKIP() << why;
    test::announce_lane(std::string("int8 16x1 decode kernels, ") + jit::isa_name(GetParam()),
                        jit::features_of(GetParam()));
  }

  void check(int64_t out, int64_t in, int64_t tokens, double sparsity, Activation act,
             bool residual, bool int8_out, uint32_t seed) {
    SCOPED_TRACE(testing::Message() << "out=" << out << " in=" << in << " tokens=" << tokens
                                    << " sparsity=" << sparsity << " act=" << to_string(act)
                                    << " residual=" << residual << " int8_out=" << int8_out);
    const auto w = decode_weight(out, in, sparsity, seed);
    const auto w_scale = test::random_floats(static_cast<size_t>(out), seed + 2, 0.001f, 0.02f);
    const auto bias = test::random_floats(static_cast<size_t>(out), seed + 3);
    const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed + 4, -2, 2);
    const auto res = test::random_floats(static_cast<size_t>(tokens * out), seed + 6);

    Int8DecodeLinear layer(w.data(), w_scale.data(), bias.data(), out, in, act, GetParam(), 1);
    QuantizedInput::Impl q;
    layer.quantize(x.data(), tokens, q);
    const auto want = test::reference_int8_on(x, tokens, in, w.data(), w_scale.data(), out,
                                              {bias.data(), act, residual ? res.data() : nullptr});
    if (!int8_out) {
      std::vector<float> got(want.size(), -12345.0f);
      layer.run(q, got.data(), 0.0f, residual ? res.data() : nullptr);
      test::expect_close(got, want, 2e-5, "fp32 output");
    } else {
      const float y_scale = 0.02f;
      std::vector<int8_t> got(want.size(), 99);
      layer.run(q, got.data(), y_scale, residual ? res.data() : nullptr);
      test::expect_requantized(got, want, y_scale);
    }
  }
};

TEST_P(Int8DecodeTest, RandomShapesAndTokenCounts) {
  uint32_t seed = 10;
  for (auto [out, in] :
       {std::pair<int64_t, int64_t>{16, 8}, {1, 1}, {17, 33}, {45, 130}, {64, 257}, {200, 96}})
    for (int64_t tokens : {1, 2, 3, 4, 5, 9})
      check(out, in, tokens, 0.6, Activation::none, false, false, seed++);
}

TEST_P(Int8DecodeTest, SparsityExtremes) {
  for (double s : {0.0, 0.5, 0.9, 1.0}) check(70, 90, 3, s, Activation::none, false, false, 7);
}

TEST_P(Int8DecodeTest, EveryEpilogue) {
  uint32_t seed = 300;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (bool residual : {false, true})
      for (bool int8_out : {false, true})
        // 1..4: every kernel key (tokens per call x epilogue); 7 runs in two steps.
        for (int64_t tokens : {1, 2, 3, 4, 7})
          check(37, 50, tokens, 0.5, act, residual, int8_out, seed++);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8DecodeTest,
                         ::testing::Values(jit::Isa::reference, jit::Isa::avx2,
                                           jit::Isa::avx512_vnni),
                         [](const auto& param) { return std::string(jit::isa_name(param.param)); });

TEST(Int8DecodePack, RoundTripCountsAndLimits) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {17, 9}, {40, 70}}) {
    const auto w = decode_weight(out, in, 0.5, static_cast<uint32_t>(out + in));
    const std::vector<float> scales(static_cast<size_t>(out), 1.0f);
    const auto p = sparse::pack_int8_decode(w.data(), scales.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    int64_t blocks = 0;
    for (int64_t g = 0; g < (out + 15) / 16; ++g)
      for (int64_t c = 0; c < in; ++c) {
        bool nz = false;
        for (int64_t r = g * 16; r < std::min(out, g * 16 + 16); ++r) nz |= w[r * in + c] != 0;
        blocks += nz;
      }
    EXPECT_EQ(p.nonzero_blocks, blocks);
  }
  const std::vector<int8_t> w(70000, 1);
  const std::vector<float> scales(1, 1.0f);
  EXPECT_THROW(sparse::pack_int8_decode(w.data(), scales.data(), nullptr, 1, 70000),
               InvalidArgument);
  EXPECT_THROW(jit::int8_decode_kernel({jit::Isa::avx2, sparse::kDecodeMaxTokens + 1}),
               InvalidArgument);
}

}  // namespace
}  // namespace sparq
