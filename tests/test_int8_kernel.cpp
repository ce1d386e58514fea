// Every int8 4x1 tile-kernel variant against sparse::linear_int8 on randomized shapes with tails,
// sparsities from 0 to 100 %, every epilogue option and both output types.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "jit/code_runner.hpp"
#include "jit/cpu_features.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_block_pack.hpp"
#include "sparse/reference.hpp"
#include "src/activation_quant.hpp"
#include "src/int8_block_linear.hpp"
#include "src/tile_loop.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

struct Case {
  int64_t out, in, tokens;
  double block_sparsity;
};

// An s8 weight whose 4x1 blocks are zero with the given probability; optionally one dense row
// An s8 weight whose 4x1 blocks are zero with the given probability.
std::vector<int8_t> block_sparse_weight(int64_t out, int64_t in, double sparsity, uint32_t seed) {
  auto w = test::random_int8(static_cast<size_t>(out * in), seed);
  test::zero_row_blocks(w, out, in, 4, sparsity, seed + 1);
  return w;
}

class Int8KernelTest : public ::testing::TestWithParam<jit::Isa> {
 protected:
  void SetUp() override {
    if (const std::string why = test::lane_skip_reason(GetParam()); !why.empty())
      GTEST_SKIP() << why;
    test::announce_lane(std::string("int8 4x1 kernels, ") + jit::isa_name(GetParam()),
                        jit::features_of(GetParam()));
  }

  void check(const Case& c, Activation act, jit::Operand residual, bool int8_out, uint32_t seed,
             const std::vector<int8_t>* given_w = nullptr) {
    SCOPED_TRACE(testing::Message()
                 << "out=" << c.out << " in=" << c.in << " tokens=" << c.tokens
                 << " sparsity=" << c.block_sparsity << " act=" << to_string(act)
                 << " operand=" << static_cast<int>(residual) << " int8_out=" << int8_out);
    const auto w = given_w ? *given_w : block_sparse_weight(c.out, c.in, c.block_sparsity, seed);
    const auto w_scale = test::random_floats(static_cast<size_t>(c.out), seed + 2, 0.001f, 0.02f);
    const auto bias = test::random_floats(static_cast<size_t>(c.out), seed + 3);
    const auto xq = test::random_int8(static_cast<size_t>(c.tokens * c.in), seed + 4);
    const auto x_scale =
        test::random_floats(static_cast<size_t>(c.tokens), seed + 5, 0.001f, 0.05f);
    const auto res = test::random_floats(static_cast<size_t>(c.tokens * c.out), seed + 6);

    std::vector<float> want(static_cast<size_t>(c.tokens * c.out));
    sparse::linear_int8(xq.data(), x_scale.data(), c.tokens, w.data(), w_scale.data(), c.out, c.in,
                        {bias.data(), act, residual != jit::Operand::none ? res.data() : nullptr,
                         jit::operand_op(residual)},
                        want.data());

    Int8BlockLinear layer(w.data(), w_scale.data(), bias.data(), c.out, c.in,
                          {act, jit::operand_op(residual)}, GetParam(), 1);
    QuantizedInput::Impl q;
    q.reserve(activation_bytes(layer.layout(), c.tokens, c.in), activation_scale_count(c.tokens));
    sparse::layout_activations(xq.data(), x_scale.data(), c.tokens, c.in, layer.layout(),
                               q.x.data(), q.scales.data());
    q.form = QuantizedInput::Impl::Form::block_layout;
    q.layout = layer.layout();
    q.tokens = c.tokens;
    q.in = c.in;

    if (!int8_out) {
      std::vector<float> got(want.size(), -12345.0f);
      layer.run(q, got.data(), 0.0f, residual != jit::Operand::none ? res.data() : nullptr);
      test::expect_close(got, want, 2e-5, "fp32 output");
    } else {
      const float y_scale = 0.02f;
      std::vector<int8_t> got(want.size(), 99);
      layer.run(q, got.data(), y_scale, residual != jit::Operand::none ? res.data() : nullptr);
      test::expect_requantized(got, want, y_scale);
    }
  }
};

TEST_P(Int8KernelTest, RandomShapesWithTails) {
  uint32_t seed = 100;
  for (const auto& [out, in, tokens, sparsity] : test::kTileShapes)
    check({out, in, tokens, sparsity}, Activation::none, jit::Operand::none, false, seed++);
}

TEST_P(Int8KernelTest, SparsityExtremes) {
  for (double s : {0.0, 0.5, 0.9, 0.99, 1.0})
    check({36, 80, 45, s}, Activation::none, jit::Operand::none, false, 7);
}

TEST_P(Int8KernelTest, OneDenseRowGroupAmongEmptyOnes) {
  const Case c{40, 50, 33, 1.0};
  auto w = block_sparse_weight(c.out, c.in, 1.0, 3);
  const auto row = test::random_int8(static_cast<size_t>(c.in), 4, 1, 127);
  std::copy(row.begin(), row.end(), w.begin() + 21 * c.in);
  check(c, Activation::none, jit::Operand::none, false, 5, &w);
}

TEST_P(Int8KernelTest, EveryEpilogue) {
  uint32_t seed = 300;
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (bool int8_out : {false, true})
        // in = 800: the column-prefetching variants (in > 384 on AVX-512, > 768 on AVX2), so
        // every kernel key runs here where the CPU has its ISA.
        // On AVX-512 VNNI, 16, 70 (6 after a chunk) and 76 (12 after one) tokens run the
        // 16-token tile too, and 19 two of them where the CPU has VBMI.
        for (const Case& c : {Case{12, 24, 16, 0.6}, Case{13, 40, 70, 0.8}, Case{64, 40, 64, 0.7},
                              Case{21, 800, 19, 0.9}, Case{36, 72, 76, 0.8}})
          check(c, act, residual, int8_out, seed++);
}

TEST_P(Int8KernelTest, ExtremeValuesSaturateInt8Output) {
  // Full-scale weights and activations: accumulators far beyond the int8 range must clamp.
  const Case c{8, 64, 20, 0.0};
  std::vector<int8_t> w(static_cast<size_t>(c.out * c.in), 127);
  for (int64_t i = 0; i < c.in; ++i) w[i] = -127;  // row 0 negative
  check(c, Activation::none, jit::Operand::none, true, 9, &w);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8KernelTest,
                         ::testing::Values(jit::Isa::reference, jit::Isa::avx2,
                                           jit::Isa::avx512_vnni),
                         [](const auto& param) { return std::string(jit::isa_name(param.param)); });

TEST(ActivationQuant, VectorPathMatchesPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (auto layout : {sparse::Int8Layout::pairs_i16, sparse::Int8Layout::quads_u8})
    for (auto [tokens, in] : {std::pair<int64_t, int64_t>{1, 3},
                              {9, 8},
                              {64, 64},
                              {64, 13},
                              {70, 77},
                              {128, 77},
                              {130, 768},
                              {33, 17}}) {
      auto x =
          test::random_floats(static_cast<size_t>(tokens * in), static_cast<uint32_t>(in), -3, 3);
      x[0] = 0.0f;
      // Garbage first: the buffers are reused between calls, every byte must be written.
      std::vector<uint8_t> a(static_cast<size_t>(activation_bytes(layout, tokens, in)), 0xa5),
          b(a.size(), 0x5a);
      std::vector<float> sa(static_cast<size_t>(activation_scale_count(tokens))), sb(sa.size());
      detail::quantize_activations_avx2(x.data(), tokens, in, layout, a.data(), sa.data());
      detail::quantize_activations_portable(x.data(), tokens, in, layout, b.data(), sb.data());
      EXPECT_EQ(a, b) << "tokens=" << tokens << " in=" << in;
      EXPECT_EQ(sa, sb);
      {
        auto y = x;
        y[y.size() - 1] = std::numeric_limits<float>::quiet_NaN();
        std::vector<uint8_t> c(a.size());
        EXPECT_THROW(
            detail::quantize_activations_avx2(y.data(), tokens, in, layout, c.data(), sa.data()),
            InvalidArgument);
      }
      if (layout == sparse::Int8Layout::quads_u8 && jit::isa_available(jit::Isa::avx512)) {
        std::vector<uint8_t> c(a.size(), 0x33);
        std::vector<float> sc(sa.size());
        detail::quantize_activations_avx512(x.data(), tokens, in, c.data(), sc.data());
        EXPECT_EQ(c, b) << "avx512 tokens=" << tokens << " in=" << in;
        EXPECT_EQ(sc, sb) << "avx512 tokens=" << tokens << " in=" << in;
        // Any value that is not finite, in any position of a row (vector body or tail).
        for (float bad :
             {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
              std::numeric_limits<float>::quiet_NaN(), -std::nanf("")})
          for (size_t at : {x.size() / 2, x.size() - 1}) {
            auto y = x;
            y[at] = bad;
            EXPECT_THROW(
                detail::quantize_activations_avx512(y.data(), tokens, in, c.data(), sc.data()),
                InvalidArgument)
                << bad << " at " << at;
          }
      }
    }
}

TEST(ActivationQuant, VectorRowsMatchPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{1, 1}, {3, 15}, {4, 16}, {5, 77}, {9, 768}}) {
    auto x =
        test::random_floats(static_cast<size_t>(rows * cols), static_cast<uint32_t>(cols), -5, 5);
    for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(c)] = 0.0f;  // an all-zero row
    if (rows > 2) x[static_cast<size_t>(2 * cols)] = 1e-39f;              // a denormal maximum
    std::vector<int8_t> a(x.size(), 99), b(x.size(), 98);
    std::vector<float> sa(static_cast<size_t>(rows)), sb(sa.size());
    detail::quantize_rows_avx2(x.data(), rows, cols, a.data(), sa.data());
    sparse::quantize_rows(x.data(), rows, cols, b.data(), sb.data());
    EXPECT_EQ(a, b) << rows << "x" << cols;
    EXPECT_EQ(sa, sb) << rows << "x" << cols;
  }
  // A value that is not finite in the 16-value body, the 8-value step or the scalar tail.
  for (float value :
       {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
        std::numeric_limits<float>::quiet_NaN(), -std::nanf("")})
    for (size_t at : {3, 18, 26}) {
      std::vector<float> bad(27, 1.0f);
      bad[at] = value;
      std::vector<int8_t> q(bad.size());
      float scale[1];
      EXPECT_THROW(detail::quantize_rows_avx2(bad.data(), 1, 27, q.data(), scale), InvalidArgument)
          << value << " at " << at;
    }
}

}  // namespace
}  // namespace sparq

namespace sparq {
namespace {

// Generating code needs no particular CPU (xbyak only encodes), so every variant's generator runs
// here for every key, even where the variant cannot execute: an operand combination the
// assembler rejects fails on any machine. (Int8KernelTest.EveryEpilogue runs every key and
// compares it with the reference where the CPU has the ISA.)
// Code for features this CPU lacks is generated, but calling it without an emulator to run it
// is refused with NotSupported (the code never runs natively).
TEST(Int8KernelGeneration, CodeThisCpuCannotRunIsRefusedWhenCalled) {
  if (jit::isa_available(jit::Isa::avx512_vnni))
    GTEST_SKIP() << "this CPU runs the VNNI kernel natively";
  const jit::CodeRunner* lane = jit::set_code_runner(nullptr);
  auto kernel = jit::make_int8_kernel_avx512_vnni({jit::Isa::avx512_vnni});
  jit::set_code_runner(lane);
  EXPECT_THROW_WITH(kernel->run(jit::BlockTileArgs{}), NotSupported, "avx512_vnni");
}

TEST(Int8KernelGeneration, EveryVariantAndKeyGenerates) {
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (jit::Operand residual : {jit::Operand::none, jit::Operand::add, jit::Operand::multiply})
      for (bool int8_out : {false, true})
        for (bool prefetch : {false, true}) {
          jit::Int8KernelKey key{jit::Isa::avx512_vnni, act, residual, int8_out, prefetch};
          std::unique_ptr<jit::Int8BlockKernel> kernel;
          EXPECT_NO_THROW(kernel = jit::make_int8_kernel_avx512_vnni(key));
          ASSERT_NE(kernel, nullptr);
          // A tile is one slice of the activation layout the kernel reads (the tile loop steps
          // through slices): the kernel's tile and the packing's slice must agree.
          EXPECT_EQ(kernel->tile_tokens(), sparse::slice_tokens(kernel->layout()));
          EXPECT_EQ(kernel->key(), key);
          // The 16-token tiles read one quarter of the same slices.
          auto quarter_key = key;
          quarter_key.quarters = 1;
          EXPECT_NO_THROW(kernel = jit::make_int8_kernel_avx512_vnni(quarter_key));
          ASSERT_NE(kernel, nullptr);
          EXPECT_EQ(kernel->tile_tokens(), 16);
          key.isa = jit::Isa::avx2;
          EXPECT_NO_THROW(kernel = jit::make_int8_kernel_avx2(key));
          ASSERT_NE(kernel, nullptr);
          EXPECT_EQ(kernel->tile_tokens(), sparse::slice_tokens(kernel->layout()));
          EXPECT_EQ(kernel->key(), key);
        }
}

// The 16-token tile's two column gathers (vpermd + vpshufb, and VBMI's vpermb) on one quarter of
// a chunk each, against sparse::linear_int8 on those tokens: the layer runs only the one this
// CPU prefers.
TEST(Int8QuarterTile, BothGathersMatchTheReference) {
  if (const std::string why = test::lane_skip_reason(jit::vbmi_features()); !why.empty())
    GTEST_SKIP() << why;
  const int64_t out = 44, in = 90, tokens = 64;
  const auto w = block_sparse_weight(out, in, 0.6, 21);
  const auto w_scale = test::random_floats(static_cast<size_t>(out), 22, 0.001f, 0.02f);
  const auto bias = test::random_floats(static_cast<size_t>(out), 23);
  const auto xq = test::random_int8(static_cast<size_t>(tokens * in), 24);
  const auto x_scale = test::random_floats(static_cast<size_t>(tokens), 25, 0.001f, 0.05f);
  const auto layout = sparse::Int8Layout::quads_u8;
  const auto packed = sparse::pack_int8_4x1(w.data(), w_scale.data(), bias.data(), out, in, layout);
  std::vector<uint8_t> x(static_cast<size_t>(activation_bytes(layout, tokens, in)));
  std::vector<float> lane_scales(static_cast<size_t>(activation_scale_count(tokens)));
  sparse::layout_activations(xq.data(), x_scale.data(), tokens, in, layout, x.data(),
                             lane_scales.data());
  tbb::task_arena& arena = arena_for(1, 0);
  for (int quarter = 0; quarter < 4; ++quarter)
    for (bool vbmi : {false, true}) {
      SCOPED_TRACE(testing::Message() << "quarter " << quarter << " vbmi " << vbmi);
      jit::Int8KernelKey key{jit::Isa::avx512_vnni, Activation::gelu_tanh};
      key.quarters = 1;
      key.vbmi = vbmi;
      const auto kernel = jit::int8_block_kernel(key);
      const int64_t t0 = 16 * quarter, n = 13;  // 13 of the quarter's 16 tokens
      std::vector<float> want(static_cast<size_t>(n * out)), got(want.size(), -1.0f);
      sparse::linear_int8(xq.data() + t0 * in, x_scale.data() + t0, n, w.data(), w_scale.data(),
                          out, in, {bias.data(), Activation::gelu_tanh}, want.data());
      TileLoop loop;
      loop.kernel = kernel.get();
      loop.arena = &arena;
      loop.out = out;
      loop.groups = packed.groups();
      loop.group_begin = packed.group_begin.data();
      loop.entries = packed.entries.data();
      loop.w_scale = packed.scales.data();
      loop.bias = packed.bias.data();
      loop.compensation = packed.compensation.data();
      loop.x = x.data() + t0;  // the quarter's bytes of every 64-byte column
      loop.slice_bytes = 16;
      loop.x_scales = x_scale.data() + t0;  // in token order
      loop.tokens = n;
      loop.y = got.data();
      run_tiles(loop);
      test::expect_close(got, want, 2e-5, "y");
    }
}

TEST(Int8KernelGeneration, QuarterTilesOnlyOnAvx512Vnni) {
  if (!jit::can_run(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  jit::Int8KernelKey key{jit::Isa::avx2};
  key.quarters = 1;
  EXPECT_THROW_WITH(jit::int8_block_kernel(key), NotSupported, "quarters 1");
  key.isa = jit::Isa::avx512_vnni;
  key.quarters = 2;
  if (jit::can_run(jit::Isa::avx512_vnni))
    EXPECT_THROW_WITH(jit::int8_block_kernel(key), NotSupported, "quarters 2");
  key.quarters = 4;
  key.vbmi = true;  // vpermb only gathers the 16-token tile's columns
  if (jit::can_run(jit::vbmi_features()))
    EXPECT_THROW_WITH(jit::int8_block_kernel(key), NotSupported, "16-token");
}

}  // namespace
}  // namespace sparq
