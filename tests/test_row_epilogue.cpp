// The generated row epilogue (dense int8 layers) against its portable twin: every activation,
// with and without residual, every output type, rows with tails of every length.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "jit/row_epilogue.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

class RowEpilogueTest : public ::testing::TestWithParam<jit::Isa> {
 protected:
  void SetUp() override {
    if (const std::string why = test::lane_skip_reason(GetParam()); !why.empty())
      GTEST_SKIP() << why;
    test::announce_lane(std::string("row epilogue, ") + jit::isa_name(GetParam()),
                        jit::features_of(GetParam()));
  }
};

std::vector<int32_t> random_acc(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(-400000, 400000);
  std::vector<int32_t> v(n);
  for (auto& a : v) a = d(rng);
  return v;
}

TEST_P(RowEpilogueTest, MatchesThePortableEpilogue) {
  uint32_t seed = 1;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (jit::TileOutput output :
           {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
        for (int64_t n : {1, 7, 15, 16, 17, 63, 64, 65, 130, 777}) {
          SCOPED_TRACE(testing::Message()
                       << to_string(act) << " operand=" << static_cast<int>(residual)
                       << " output=" << static_cast<int>(output) << " n=" << n);
          const size_t un = static_cast<size_t>(n);
          const auto acc = random_acc(un, seed++);
          const auto w_scale = test::random_floats(un, seed++, 1e-5f, 2e-5f);
          const auto bias = test::random_floats(un, seed++);
          const auto res = test::random_floats(un, seed++);
          const float x_scale = 0.5f, inv_y_scale = 20.0f;
          const jit::RowEpilogueKey key{GetParam(), act, residual, output};
          const auto kernel = jit::row_epilogue(key);
          // One element of guard past the row: nothing may be written there.
          const size_t bytes = un * (output == jit::TileOutput::f32  ? 4
                                     : output == jit::TileOutput::s8 ? 1
                                                                     : 2);
          std::vector<uint8_t> got(bytes + 4, 0xcd), want(bytes + 4, 0xcd);
          jit::apply_row_epilogue(kernel.get(), key, acc.data(), x_scale, w_scale.data(),
                                  bias.data(), res.data(), got.data(), n, inv_y_scale);
          jit::apply_row_epilogue(nullptr, key, acc.data(), x_scale, w_scale.data(), bias.data(),
                                  res.data(), want.data(), n, inv_y_scale);
          for (size_t i = bytes; i < got.size(); ++i)
            ASSERT_EQ(got[i], 0xcd) << "wrote past the row";
          for (size_t i = 0; i < un; ++i) {
            if (output == jit::TileOutput::f32) {
              float g, w;
              std::memcpy(&g, got.data() + 4 * i, 4);
              std::memcpy(&w, want.data() + 4 * i, 4);
              ASSERT_NEAR(g, w, 2e-6 * (1.0 + std::fabs(w))) << "element " << i;
            } else if (output == jit::TileOutput::s8) {
              // The activations' approximations may move a value across a rounding boundary.
              ASSERT_LE(std::abs(int(int8_t(got[i])) - int(int8_t(want[i]))), 1) << "element " << i;
            } else {
              uint16_t g, w;
              std::memcpy(&g, got.data() + 2 * i, 2);
              std::memcpy(&w, want.data() + 2 * i, 2);
              const float gf = sparse::from_bf16(g), wf = sparse::from_bf16(w);
              ASSERT_NEAR(gf, wf, 1e-2 * (1.0 + std::fabs(wf))) << "element " << i;
            }
          }
        }
}

// int32 sums less a per-column compensation (u8 activations, as the dense int8 layer hands them
// over): the generated epilogue against the portable one, and both against the epilogue without
// compensation on the compensated sums.
TEST_P(RowEpilogueTest, CompensationIsSubtractedFromTheSums) {
  uint32_t seed = 50;
  for (Activation act : {Activation::none, Activation::gelu_tanh})
    for (int64_t n : {1, 15, 16, 65, 777}) {
      SCOPED_TRACE(testing::Message() << to_string(act) << " n=" << n);
      const size_t un = static_cast<size_t>(n);
      const auto acc = random_acc(un, seed++);
      const auto comp = random_acc(un, seed++);
      const auto w_scale = test::random_floats(un, seed++, 1e-5f, 2e-5f);
      const auto bias = test::random_floats(un, seed++);
      std::vector<int32_t> less(un);
      for (size_t i = 0; i < un; ++i) less[i] = acc[i] - comp[i];
      const jit::RowEpilogueKey key{GetParam(),           act,   jit::Operand::none,
                                    jit::TileOutput::f32, false, true};
      jit::RowEpilogueKey plain = key;
      plain.compensation = false;
      std::vector<float> got(un), portable(un), want(un);
      jit::apply_row_epilogue(jit::row_epilogue(key).get(), key, acc.data(), 0.5f, w_scale.data(),
                              bias.data(), nullptr, got.data(), n, 0.0f, comp.data());
      jit::apply_row_epilogue(nullptr, key, acc.data(), 0.5f, w_scale.data(), bias.data(), nullptr,
                              portable.data(), n, 0.0f, comp.data());
      jit::apply_row_epilogue(jit::row_epilogue(plain).get(), plain, less.data(), 0.5f,
                              w_scale.data(), bias.data(), nullptr, want.data(), n, 0.0f);
      for (size_t i = 0; i < un; ++i) {
        ASSERT_EQ(got[i], want[i]) << "element " << i;
        ASSERT_NEAR(portable[i], want[i], 2e-6 * (1.0 + std::fabs(want[i]))) << "element " << i;
      }
    }
}

// fp32 sums (float_acc: y = act(acc + bias) [op residual]), as the bf16 sparse-input layer
// hands them over: the generated epilogue against the portable one, tails through the stack.
TEST_P(RowEpilogueTest, FloatSumsMatchThePortableEpilogue) {
  uint32_t seed = 100;
  for (Activation act : {Activation::none, Activation::gelu_tanh, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (jit::TileOutput output : {jit::TileOutput::f32, jit::TileOutput::bf16})
        for (int64_t n : {1, 15, 64, 65, 777}) {
          SCOPED_TRACE(testing::Message()
                       << to_string(act) << " operand=" << static_cast<int>(residual)
                       << " output=" << static_cast<int>(output) << " n=" << n);
          const size_t un = static_cast<size_t>(n);
          const auto acc = test::random_floats(un, seed++, -3.0f, 3.0f);
          const auto bias = test::random_floats(un, seed++);
          const auto res = test::random_floats(un, seed++);
          jit::RowEpilogueKey key{GetParam(), act, residual, output};
          key.float_acc = true;
          const auto kernel = jit::row_epilogue(key);
          const size_t bytes = un * (output == jit::TileOutput::f32 ? 4 : 2);
          std::vector<uint8_t> got(bytes + 4, 0xcd), want(bytes + 4, 0xcd);
          jit::apply_row_epilogue(kernel.get(), key, acc.data(), 1.0f, nullptr, bias.data(),
                                  res.data(), got.data(), n, 0.0f);
          jit::apply_row_epilogue(nullptr, key, acc.data(), 1.0f, nullptr, bias.data(), res.data(),
                                  want.data(), n, 0.0f);
          for (size_t i = bytes; i < got.size(); ++i)
            ASSERT_EQ(got[i], 0xcd) << "wrote past the row";
          for (size_t i = 0; i < un; ++i) {
            float g, w;
            if (output == jit::TileOutput::f32) {
              std::memcpy(&g, got.data() + 4 * i, 4);
              std::memcpy(&w, want.data() + 4 * i, 4);
            } else {
              uint16_t gb, wb;
              std::memcpy(&gb, got.data() + 2 * i, 2);
              std::memcpy(&wb, want.data() + 2 * i, 2);
              g = sparse::from_bf16(gb);
              w = sparse::from_bf16(wb);
            }
            ASSERT_NEAR(g, w, (output == jit::TileOutput::f32 ? 2e-6 : 1e-2) * (1.0 + std::fabs(w)))
                << "element " << i;
          }
          // Without activation and operand the sum is exact: acc + bias.
          if (act == Activation::none && residual == jit::Operand::none &&
              output == jit::TileOutput::f32)
            for (size_t i = 0; i < un; ++i) {
              float g;
              std::memcpy(&g, got.data() + 4 * i, 4);
              ASSERT_EQ(g, acc[i] + bias[i]) << "element " << i;
            }
        }
}

TEST(RowEpilogue, RefusesIsasItIsNotGeneratedFor) {
  EXPECT_THROW(jit::row_epilogue({jit::Isa::reference}), NotSupported);
}

INSTANTIATE_TEST_SUITE_P(GeneratedIsas, RowEpilogueTest,
                         ::testing::Values(jit::Isa::avx2, jit::Isa::avx512),
                         [](const auto& param) { return std::string(jit::isa_name(param.param)); });

}  // namespace
}  // namespace sparq
