// The 16x1 AMX layers against their references (sparse::linear_int8, sparse::linear_bf16) on
// randomized shapes with tails (rows not a multiple of 16, columns per block not a multiple of a
// group, tokens not a multiple of 64), block sparsities from 0 to 100 %, every epilogue and every
// output type. No emulator runs AMX: the kernel tests skip on CPUs without it (the packings' round
// trips run everywhere).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "sparse/amx_16x1_pack.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/int8_block_pack.hpp"
#include "sparse/reference.hpp"
#include "src/activation_quant.hpp"
#include "src/amx_16x1_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

struct Case {
  int64_t out, in, tokens;
  double sparsity;  // of 16x1 blocks
};

std::vector<int8_t> weight_16x1(int64_t out, int64_t in, double sparsity, uint32_t seed) {
  auto w = test::random_int8(static_cast<size_t>(out * in), seed);
  test::zero_row_blocks(w, out, in, 16, sparsity, seed + 1);
  return w;
}

TEST(Amx16x1Pack, RoundTripsAndKeepsOnlyTheBlocksColumns) {
  for (const auto& [out, in, tokens, sparsity] : test::kTileShapes) {
    SCOPED_TRACE(testing::Message() << out << " x " << in << " at " << sparsity);
    const auto w = weight_16x1(out, in, sparsity, 11);
    const std::vector<float> scale(static_cast<size_t>(out), 0.5f);
    std::vector<float> wf(w.begin(), w.end());
    for (float& v : wf) v *= 0.01f;
    const auto int8 = sparse::pack_int8_16x1_amx(w.data(), scale.data(), nullptr, out, in);
    const auto bf16 = sparse::pack_bf16_16x1_amx(wf.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense_int8(int8), w);
    std::vector<float> rounded(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) rounded[i] = sparse::from_bf16(sparse::to_bf16(wf[i]));
    EXPECT_EQ(sparse::to_dense_bf16(bf16), rounded);
    int64_t columns = 0;  // columns where some row of the block is non-zero
    for (int64_t b = 0; b * 16 < out; ++b)
      for (int64_t i = 0; i < in; ++i)
        for (int64_t r = 16 * b; r < std::min(out, 16 * b + 16); ++r)
          if (w[r * in + i] != 0) {
            ++columns;
            break;
          }
    for (const sparse::Amx16x1Weights* p : {&int8, &bf16}) {
      EXPECT_EQ(p->nonzero_columns, columns);
      // Groups of group_columns, the last of each block padded, and the B rows holding real
      // columns counted per group.
      int64_t steps = 0;
      for (uint8_t n : p->steps) steps += n;
      const int per_step = p->group_columns == 64 ? 4 : 2;
      EXPECT_GE(steps * per_step, columns);
      EXPECT_LT(steps * per_step, columns + p->blocks() * per_step);
      EXPECT_LE(p->groups() * p->group_columns, columns + p->blocks() * (p->group_columns - 1));
    }
  }
}

class Int8Amx16x1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Int8Amx16x1Linear::available())
      GTEST_SKIP() << "this CPU lacks AMX-INT8 (no emulator runs AMX)";
  }

  enum class Out { f32, s8, bf16 };

  void check(const Case& c, Activation act, jit::Operand operand, Out out_type, uint32_t seed,
             const std::vector<int8_t>* given_w = nullptr) {
    SCOPED_TRACE(testing::Message() << "out=" << c.out << " in=" << c.in << " tokens=" << c.tokens
                                    << " sparsity=" << c.sparsity << " act=" << to_string(act)
                                    << " operand=" << static_cast<int>(operand)
                                    << " output=" << static_cast<int>(out_type));
    const auto w = given_w ? *given_w : weight_16x1(c.out, c.in, c.sparsity, seed);
    const auto w_scale = test::random_floats(static_cast<size_t>(c.out), seed + 2, 0.001f, 0.02f);
    const auto bias = test::random_floats(static_cast<size_t>(c.out), seed + 3);
    const auto xq = test::random_int8(static_cast<size_t>(c.tokens * c.in), seed + 4);
    const auto x_scale =
        test::random_floats(static_cast<size_t>(c.tokens), seed + 5, 0.001f, 0.05f);
    const auto res = test::random_floats(static_cast<size_t>(c.tokens * c.out), seed + 6);
    const float* operand_data = operand != jit::Operand::none ? res.data() : nullptr;

    std::vector<float> want(static_cast<size_t>(c.tokens * c.out));
    sparse::linear_int8(xq.data(), x_scale.data(), c.tokens, w.data(), w_scale.data(), c.out, c.in,
                        {bias.data(), act, operand_data, jit::operand_op(operand)}, want.data());

    Int8Amx16x1Linear layer(w.data(), w_scale.data(), bias.data(), c.out, c.in,
                            {act, jit::operand_op(operand)}, 1);
    const auto layout = sparse::Int8Layout::quads_u8;
    QuantizedInput::Impl q;
    q.reserve(activation_bytes(layout, c.tokens, c.in), activation_scale_count(c.tokens));
    sparse::layout_activations(xq.data(), x_scale.data(), c.tokens, c.in, layout, q.x.data(),
                               q.scales.data());
    q.form = QuantizedInput::Impl::Form::block_layout;
    q.layout = layout;
    q.tokens = c.tokens;
    q.in = c.in;
    ASSERT_TRUE(layer.reads(q));

    switch (out_type) {
      case Out::f32: {
        std::vector<float> got(want.size(), -12345.0f);
        layer.run(q, got.data(), 0.0f, operand_data);
        test::expect_close(got, want, 2e-5, "fp32 output");
        break;
      }
      case Out::s8: {
        const float y_scale = 0.02f;
        std::vector<int8_t> got(want.size(), 99);
        layer.run(q, got.data(), y_scale, operand_data);
        test::expect_requantized(got, want, y_scale);
        break;
      }
      case Out::bf16: {
        std::vector<uint16_t> got(want.size(), 0x7fc1);
        layer.run(q, got.data(), 0.0f, operand_data, true);
        std::vector<float> widened(got.size());
        for (size_t i = 0; i < got.size(); ++i) widened[i] = sparse::from_bf16(got[i]);
        std::vector<float> rounded(want.size());
        for (size_t i = 0; i < want.size(); ++i)
          rounded[i] = sparse::from_bf16(sparse::to_bf16(want[i]));
        test::expect_close(widened, rounded, 1e-2, "bf16 output");
        break;
      }
    }
  }
};

TEST_F(Int8Amx16x1Test, RandomShapesWithTails) {
  uint32_t seed = 100;
  for (const auto& [out, in, tokens, sparsity] : test::kTileShapes)
    check({out, in, tokens, sparsity}, Activation::none, jit::Operand::none, Out::f32, seed++);
  // Blocks of more than one group, token counts around the chunk and its quarters.
  for (const Case& c : {Case{48, 300, 64, 0.3}, Case{40, 1000, 129, 0.6}, Case{33, 200, 191, 0.0},
                        Case{16, 64, 1, 0.0}})
    check(c, Activation::none, jit::Operand::none, Out::f32, seed++);
}

TEST_F(Int8Amx16x1Test, SparsityExtremes) {
  for (double s : {0.0, 0.5, 0.9, 0.99, 1.0})
    check({36, 80, 45, s}, Activation::none, jit::Operand::none, Out::f32, 7);
}

TEST_F(Int8Amx16x1Test, RunsWeightsOfAnyStructure) {
  // 4x1-sparse and unstructured weights: the kernel keeps every column a block's rows use.
  auto w = test::random_int8(static_cast<size_t>(50 * 140), 21);
  test::zero_row_blocks(w, 50, 140, 4, 0.8, 22);
  check({50, 140, 70, 0.0}, Activation::none, jit::Operand::none, Out::f32, 23, &w);
  auto u = test::random_int8(static_cast<size_t>(37 * 90), 24);
  std::mt19937 rng(25);
  for (auto& v : u)
    if (rng() % 10 < 7) v = 0;
  check({37, 90, 20, 0.0}, Activation::none, jit::Operand::none, Out::f32, 26, &u);
}

TEST_F(Int8Amx16x1Test, WorkItemsStartingAtAnOddGroup) {
  // Block 0 uses all 100 columns (two groups), blocks 1-8 only 30 (one each): the second work
  // item (blocks 8..) starts at group 9.
  const Case c{144, 100, 64, 0.0};
  auto w = test::random_int8(static_cast<size_t>(c.out * c.in), 61, 1, 127);
  for (int64_t r = 16; r < c.out; ++r)
    for (int64_t i = 30; i < c.in; ++i) w[r * c.in + i] = 0;
  check(c, Activation::none, jit::Operand::none, Out::f32, 62, &w);
}

TEST_F(Int8Amx16x1Test, EveryEpilogueAndOutput) {
  uint32_t seed = 300;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand operand : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (Out out_type : {Out::f32, Out::s8, Out::bf16})
        for (const Case& c : {Case{12, 24, 16, 0.6}, Case{140, 72, 70, 0.8}})
          check(c, act, operand, out_type, seed++);
}

TEST_F(Int8Amx16x1Test, ExtremeValuesSaturateInt8Output) {
  const Case c{8, 64, 20, 0.0};
  std::vector<int8_t> w(static_cast<size_t>(c.out * c.in), 127);
  for (int64_t i = 0; i < c.in; ++i) w[i] = -127;  // row 0 negative
  check(c, Activation::none, jit::Operand::none, Out::s8, 9, &w);
}

TEST_F(Int8Amx16x1Test, ManyThreadsMatchOne) {
  const Case c{300, 160, 200, 0.7};
  const auto w = weight_16x1(c.out, c.in, c.sparsity, 41);
  const auto w_scale = test::random_floats(static_cast<size_t>(c.out), 42, 0.001f, 0.02f);
  const auto x = test::random_floats(static_cast<size_t>(c.tokens * c.in), 43);
  std::vector<float> one(static_cast<size_t>(c.tokens * c.out)), two(one.size());
  Int8Amx16x1Linear a(w.data(), w_scale.data(), nullptr, c.out, c.in, {}, 1);
  Int8Amx16x1Linear b(w.data(), w_scale.data(), nullptr, c.out, c.in, {}, 2);
  QuantizedInput::Impl qa, qb;
  a.quantize(x.data(), c.tokens, qa);
  b.quantize(x.data(), c.tokens, qb);
  a.run(qa, one.data(), 0.0f, nullptr);
  b.run(qb, two.data(), 0.0f, nullptr);
  EXPECT_EQ(one, two);
}

// Several callers at once on one layer (its arena shared): each gets its own answer, whether
// the call has more chunks than threads (a chunk per task) or fewer (ranges, then tokens).
TEST_F(Int8Amx16x1Test, ConcurrentCallersGetTheirOwnResults) {
  const int64_t out = 200, in = 300;
  const auto w = weight_16x1(out, in, 0.8, 51);
  const auto w_scale = test::random_floats(static_cast<size_t>(out), 52, 0.001f, 0.02f);
  const Int8Amx16x1Linear layer(w.data(), w_scale.data(), nullptr, out, in, {}, 2);
  constexpr int kCallers = 4;
  const int64_t tokens[kCallers] = {40, 200, 64, 150};
  std::vector<std::vector<float>> x(kCallers), want(kCallers), got(kCallers);
  for (int c = 0; c < kCallers; ++c) {
    x[c] = test::random_floats(static_cast<size_t>(tokens[c] * in), 60 + c);
    want[c].resize(static_cast<size_t>(tokens[c] * out));
    got[c].resize(want[c].size());
    QuantizedInput::Impl q;
    layer.quantize(x[c].data(), tokens[c], q);
    layer.run(q, want[c].data(), 0.0f, nullptr);
  }
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; ++c)
    threads.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        QuantizedInput::Impl q;
        layer.quantize(x[c].data(), tokens[c], q);
        layer.run(q, got[c].data(), 0.0f, nullptr);
      }
    });
  for (auto& t : threads) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(got[c], want[c]) << "caller " << c;
}

class Bf16Amx16x1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Bf16Amx16x1Linear::available())
      GTEST_SKIP() << "this CPU lacks AMX-BF16 (no emulator runs AMX)";
  }

  void check(const Case& c, Activation act, jit::Operand operand, bool bf16_out, uint32_t seed) {
    SCOPED_TRACE(testing::Message()
                 << "out=" << c.out << " in=" << c.in << " tokens=" << c.tokens
                 << " sparsity=" << c.sparsity << " act=" << to_string(act)
                 << " operand=" << static_cast<int>(operand) << " bf16_out=" << bf16_out);
    auto w = test::random_floats(static_cast<size_t>(c.out * c.in), seed);
    test::zero_row_blocks(w, c.out, c.in, 16, c.sparsity, seed + 1);
    const auto bias = test::random_floats(static_cast<size_t>(c.out), seed + 3);
    const auto x = test::random_floats(static_cast<size_t>(c.tokens * c.in), seed + 4, -2, 2);
    const auto res = test::random_floats(static_cast<size_t>(c.tokens * c.out), seed + 6);
    const float* operand_data = operand != jit::Operand::none ? res.data() : nullptr;
    std::vector<float> want(static_cast<size_t>(c.tokens * c.out));
    sparse::linear_bf16(x.data(), c.tokens, sparse::to_bf16(w).data(), c.out, c.in,
                        {bias.data(), act, operand_data, jit::operand_op(operand)}, want.data());
    const Bf16Amx16x1Linear layer(w.data(), bias.data(), c.out, c.in,
                                  {act, jit::operand_op(operand)}, 1);
    // Sums of up to `in` products in another order: relative to the magnitude of the terms.
    const double tol = 2e-6 * std::sqrt(static_cast<double>(c.in)) + 1e-6;
    if (!bf16_out) {
      std::vector<float> got(want.size(), -12345.0f);
      layer.run(x.data(), c.tokens, got.data(), operand_data, false);
      test::expect_close(got, want, tol, "fp32 output");
    } else {
      std::vector<uint16_t> got(want.size(), 0x7fc1);
      layer.run(x.data(), c.tokens, got.data(), operand_data, true);
      std::vector<float> widened(got.size()), rounded(want.size());
      for (size_t i = 0; i < got.size(); ++i) widened[i] = sparse::from_bf16(got[i]);
      for (size_t i = 0; i < want.size(); ++i)
        rounded[i] = sparse::from_bf16(sparse::to_bf16(want[i]));
      test::expect_close(widened, rounded, 1e-2, "bf16 output");
    }
  }
};

TEST_F(Bf16Amx16x1Test, RandomShapesWithTails) {
  uint32_t seed = 500;
  for (const auto& [out, in, tokens, sparsity] : test::kTileShapes)
    check({out, in, tokens, sparsity}, Activation::none, jit::Operand::none, false, seed++);
  for (const Case& c : {Case{48, 300, 64, 0.3}, Case{40, 1000, 129, 0.6}, Case{33, 200, 191, 0.0},
                        Case{16, 32, 1, 0.0}, Case{144, 70, 65, 0.1}})
    check(c, Activation::none, jit::Operand::none, false, seed++);
}

TEST_F(Bf16Amx16x1Test, SparsityExtremes) {
  for (double s : {0.0, 0.5, 0.9, 0.99, 1.0})
    check({36, 80, 45, s}, Activation::none, jit::Operand::none, false, 8);
}

TEST_F(Bf16Amx16x1Test, EveryEpilogueAndOutput) {
  uint32_t seed = 700;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand operand : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (bool bf16_out : {false, true})
        for (const Case& c : {Case{12, 24, 16, 0.6}, Case{140, 72, 70, 0.8}})
          check(c, act, operand, bf16_out, seed++);
}

TEST_F(Bf16Amx16x1Test, ManyThreadsMatchOne) {
  const Case c{300, 160, 200, 0.7};
  auto w = test::random_floats(static_cast<size_t>(c.out * c.in), 81);
  test::zero_row_blocks(w, c.out, c.in, 16, c.sparsity, 82);
  const auto x = test::random_floats(static_cast<size_t>(c.tokens * c.in), 83);
  std::vector<float> one(static_cast<size_t>(c.tokens * c.out)), two(one.size());
  Bf16Amx16x1Linear(w.data(), nullptr, c.out, c.in, {}, 1)
      .run(x.data(), c.tokens, one.data(), nullptr, false);
  Bf16Amx16x1Linear(w.data(), nullptr, c.out, c.in, {}, 2)
      .run(x.data(), c.tokens, two.data(), nullptr, false);
  EXPECT_EQ(one, two);
}

}  // namespace
}  // namespace sparq
