// The int8 2:4 kernel: its packed layout (round trip, positions, violations), the AVX2 rows
// against the portable twin bit for bit, and the layer against sparse::linear_int8 with every
// epilogue, token counts 1..9 and widths that leave a partial 64-column window.
#include <gtest/gtest.h>

#include <random>

#include "jit/cpu_features.hpp"
#include "jit/int8_nm_decode_kernel.hpp"
#include "jit/int8_nm_prefill_kernel.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/int8_nm_decode_pack.hpp"
#include "sparse/int8_nm_pack.hpp"
#include "sparse/int8_nm_prefill_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/int8_nm_kernel.hpp"
#include "src/int8_nm_linear.hpp"
#include "src/int8_nm_prefill_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

// A 2:4 s8 weight; kept values are dropped with probability `extra` (blocks with 0 or 1).
std::vector<int8_t> two_of_four_s8(int64_t out, int64_t in, double extra, uint32_t seed) {
  auto f =
      sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), seed), out, in, 2, 4);
  std::mt19937 rng(seed + 1);
  std::bernoulli_distribution drop(extra);
  std::uniform_int_distribution<int> value(-127, 127);
  std::vector<int8_t> w(f.size(), 0);
  for (size_t i = 0; i < f.size(); ++i)
    if (f[i] != 0.0f && !drop(rng)) w[i] = static_cast<int8_t>(value(rng));
  return w;
}

TEST(Int8NmPack, RoundTripAndViolation) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 4}, {3, 70}, {9, 128}, {5, 200}}) {
    const auto w = two_of_four_s8(out, in, 0.2, static_cast<uint32_t>(out * in));
    const std::vector<float> scale(static_cast<size_t>(out), 1.0f);
    const auto p = sparse::pack_int8_2of4(w.data(), scale.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    EXPECT_EQ(p.windows, (in + 63) / 64);
    EXPECT_EQ(static_cast<int64_t>(p.entries.size()), out * p.windows * 40);
  }
  std::vector<int8_t> bad(2 * 8, 0);
  bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = 1;
  const std::vector<float> scale(2, 1.0f);
  try {
    sparse::pack_int8_2of4(bad.data(), scale.data(), nullptr, 2, 8);
    ADD_FAILURE() << "a 3-of-4 row packed";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
}

TEST(Int8NmKernel, VectorRowsMatchPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (auto [out, in] : {std::pair<int64_t, int64_t>{7, 64}, {13, 70}, {20, 300}})
    for (int tokens = 1; tokens <= kNmMaxTokens; ++tokens) {
      const auto w = two_of_four_s8(out, in, 0.1, static_cast<uint32_t>(in + tokens));
      const std::vector<float> scale(static_cast<size_t>(out), 1.0f);
      const auto p = sparse::pack_int8_2of4(w.data(), scale.data(), nullptr, out, in);
      auto x = test::random_int8(static_cast<size_t>(tokens * p.padded_in()), 5);
      for (int t = 0; t < tokens; ++t)
        for (int64_t i = in; i < p.padded_in(); ++i) x[t * p.padded_in() + i] = 0;
      std::vector<int32_t> a(static_cast<size_t>(tokens * out)), b(a.size());
      int8_nm_rows_avx2(p, x.data(), p.padded_in(), tokens, 0, out, a.data());
      int8_nm_rows_portable(p, x.data(), p.padded_in(), tokens, 0, out, b.data());
      EXPECT_EQ(a, b) << out << "x" << in << " tokens=" << tokens;
      // And against the plain definition.
      for (int t = 0; t < tokens; ++t)
        for (int64_t r = 0; r < out; ++r) {
          int32_t want = 0;
          for (int64_t i = 0; i < in; ++i) want += w[r * in + i] * x[t * p.padded_in() + i];
          ASSERT_EQ(b[t * out + r], want) << "t=" << t << " r=" << r;
        }
    }
}

class Int8NmLayerTest : public ::testing::TestWithParam<jit::Isa> {};

TEST_P(Int8NmLayerTest, MatchesReference) {
  const jit::Isa isa = GetParam();
  if (const std::string why = test::lane_skip_reason(isa); !why.empty()) GTEST_SKIP() << why;
  test::announce_lane(std::string("int8 2:4 decode, ") + jit::isa_name(isa), jit::features_of(isa));
  // The row kernels share the reference's scalar epilogue; the JIT kernel's activations are
  // polynomial approximations.
  const bool exact = isa != jit::Isa::avx512_vnni;
  uint32_t seed = 40;
  // Every epilogue and 1..4 tokens per call: every decode kernel key runs (9 in three steps).
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (bool residual : {false, true})
      for (bool int8_out : {false, true})
        for (int64_t tokens : {1, 2, 3, 4, 9})
          for (auto [out, in] : {std::pair<int64_t, int64_t>{23, 90}, {40, 132}, {16, 8}}) {
            SCOPED_TRACE(testing::Message() << "tokens=" << tokens << " act=" << to_string(act)
                                            << " residual=" << residual << " int8=" << int8_out);
            const auto w = two_of_four_s8(out, in, 0.2, seed++);
            const auto w_scale =
                test::random_floats(static_cast<size_t>(out), seed++, 0.001f, 0.02f);
            const auto bias = test::random_floats(static_cast<size_t>(out), seed++);
            const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed++, -2, 2);
            const auto res = test::random_floats(static_cast<size_t>(tokens * out), seed++);
            Int8NmLinear layer(w.data(), w_scale.data(), bias.data(), out, in, act, isa, 1);
            QuantizedInput::Impl q;
            layer.quantize(x.data(), tokens, q);
            const auto want =
                test::reference_int8_on(x, tokens, in, w.data(), w_scale.data(), out,
                                        {bias.data(), act, residual ? res.data() : nullptr});
            if (!int8_out) {
              std::vector<float> got(want.size());
              layer.run(q, got.data(), 0.0f, residual ? res.data() : nullptr);
              test::expect_close(got, want, exact ? 1e-6 : 2e-5, "fp32");
            } else {
              std::vector<int8_t> got(want.size());
              layer.run(q, got.data(), 0.02f, residual ? res.data() : nullptr);
              if (exact) {
                for (size_t i = 0; i < want.size(); ++i)
                  ASSERT_EQ(got[i], sparse::requantize(want[i], 1.0f / 0.02f)) << i;
              } else {
                test::expect_requantized(got, want, 0.02f);
              }
            }
          }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, Int8NmLayerTest,
                         ::testing::Values(jit::Isa::reference, jit::Isa::avx2,
                                           jit::Isa::avx512_vnni),
                         [](const auto& p) { return std::string(jit::isa_name(p.param)); });

TEST(Int8NmDecodePack, RoundTripAndViolation) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 4}, {17, 70}, {32, 8}, {5, 203}}) {
    const auto w = two_of_four_s8(out, in, 0.2, static_cast<uint32_t>(out * in + 1));
    const std::vector<float> scale(static_cast<size_t>(out), 1.0f);
    const auto p = sparse::pack_int8_2of4_decode(w.data(), scale.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    EXPECT_EQ(p.windows, (in + 7) / 8);
    EXPECT_EQ(p.groups(), (out + 15) / 16);
    EXPECT_EQ(static_cast<int64_t>(p.entries.size()), p.groups() * p.windows * 80);
    for (int64_t r = 0; r < out; ++r) {
      int32_t sum = 0;
      for (int64_t c = 0; c < in; ++c) sum += w[r * in + c];
      EXPECT_EQ(p.compensation[r], 128 * sum) << "row " << r;
    }
  }
  std::vector<int8_t> bad(2 * 8, 0);
  bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = 1;
  const std::vector<float> scale(2, 1.0f);
  EXPECT_THROW_WITH(sparse::pack_int8_2of4_decode(bad.data(), scale.data(), nullptr, 2, 8),
                    InvalidArgument, "row 1");
}

TEST(Int8NmDecodeKernel, BadKeysAreRefused) {
  EXPECT_THROW(jit::int8_nm_decode_kernel({jit::Isa::avx2, 1}), NotSupported);
  if (jit::can_run(jit::Isa::avx512_vnni)) {
    EXPECT_THROW(jit::int8_nm_decode_kernel({jit::Isa::avx512_vnni, 5}), InvalidArgument);
  }
}

TEST(Int8NmPrefillPack, RoundTripAndIndices) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 4}, {17, 70}, {32, 8}, {5, 203}}) {
    const auto w = two_of_four_s8(out, in, 0.2, static_cast<uint32_t>(out * in + 2));
    const auto scale = test::random_floats(static_cast<size_t>(out), 9, 0.01f, 0.02f);
    const auto p = sparse::pack_int8_2of4_prefill(w.data(), scale.data(), nullptr, out, in);
    EXPECT_EQ(sparse::to_dense(p), w) << out << "x" << in;
    EXPECT_EQ(p.windows, (in + 7) / 8);
    EXPECT_EQ(p.groups, (out + 15) / 16);
    EXPECT_EQ(static_cast<int64_t>(p.entries.size()), p.groups * p.windows * 128);
    for (int64_t r = 0; r < out; ++r) {
      int32_t sum = 0;
      for (int64_t c = 0; c < in; ++c) sum += w[r * in + c];
      EXPECT_EQ(p.compensation[r], 128 * sum) << "row " << r;
      EXPECT_EQ(p.scales[r], scale[r]);
    }
    // Every index byte picks within its block of the window: slots 0-1 from 0..3, 2-3 from 4..7.
    for (size_t e = 0; e < p.entries.size(); e += 128)
      for (int b = 0; b < 64; ++b)
        ASSERT_EQ(p.entries[e + b] / 4, (b % 4) / 2) << "entry " << e / 128 << " byte " << b;
  }
  std::vector<int8_t> bad(2 * 8, 0);
  bad[8 + 4] = bad[8 + 5] = bad[8 + 6] = 1;
  const std::vector<float> scale(2, 1.0f);
  EXPECT_THROW_WITH(sparse::pack_int8_2of4_prefill(bad.data(), scale.data(), nullptr, 2, 8),
                    InvalidArgument, "row 1");
}

TEST(Int8NmPrefillKernel, BadKeysAreRefused) {
  if (!jit::can_run(jit::Isa::avx512_vnni)) {
    EXPECT_THROW_WITH(jit::int8_nm_prefill_kernel({}), NotSupported, "avx512_vnni");
    return;
  }
  EXPECT_THROW_WITH(jit::int8_nm_prefill_kernel({0}), InvalidArgument, "1..8");
  EXPECT_THROW_WITH(jit::int8_nm_prefill_kernel({9}), InvalidArgument, "1..8");
}

// The prefill layer against sparse::linear_int8 with every epilogue and output type: token counts
// around the 8-token tile, out with a short last group and odd group counts (the kernel's pairs
// and single), in with a partial window.
TEST(Int8NmPrefillLayer, MatchesReference) {
  if (const std::string why = test::lane_skip_reason(jit::Isa::avx512_vnni); !why.empty())
    GTEST_SKIP() << why;
  test::announce_lane("int8 2:4 prefill, avx512_vnni", jit::features_of(jit::Isa::avx512_vnni));
  uint32_t seed = 70;
  enum class Out { f32, s8, bf16 };
  for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                         Activation::gelu_erf, Activation::silu})
    for (bool residual : {false, true})
      for (Out output : {Out::f32, Out::s8, Out::bf16})
        for (auto [out, in, tokens] : {std::tuple<int64_t, int64_t, int64_t>{23, 90, 5},
                                       {48, 132, 17},
                                       {16, 8, 8},
                                       {64, 64, 1},
                                       {70, 203, 30}}) {
          SCOPED_TRACE(testing::Message()
                       << out << "x" << in << " tokens=" << tokens << " act=" << to_string(act)
                       << " residual=" << residual << " output=" << static_cast<int>(output));
          const auto w = two_of_four_s8(out, in, 0.2, seed++);
          const auto w_scale = test::random_floats(static_cast<size_t>(out), seed++, 0.001f, 0.02f);
          const auto bias = test::random_floats(static_cast<size_t>(out), seed++);
          const auto x = test::random_floats(static_cast<size_t>(tokens * in), seed++, -2, 2);
          const auto res = test::random_floats(static_cast<size_t>(tokens * out), seed++);
          Int8NmPrefillLinear layer(w.data(), w_scale.data(), bias.data(), out, in, act, 1);
          QuantizedInput::Impl q;
          layer.quantize(x.data(), tokens, q);
          ASSERT_TRUE(layer.reads(q));
          const auto want =
              test::reference_int8_on(x, tokens, in, w.data(), w_scale.data(), out,
                                      {bias.data(), act, residual ? res.data() : nullptr});
          const float* r = residual ? res.data() : nullptr;
          if (output == Out::f32) {
            std::vector<float> got(want.size());
            layer.run(q, got.data(), 0.0f, r);
            test::expect_close(got, want, 2e-5, "fp32");
          } else if (output == Out::s8) {
            std::vector<int8_t> got(want.size());
            layer.run(q, got.data(), 0.02f, r);
            test::expect_requantized(got, want, 0.02f);
          } else {
            std::vector<uint16_t> got(want.size());
            layer.run(q, got.data(), 0.0f, r, true);
            std::vector<float> widened(got.size());
            for (size_t i = 0; i < got.size(); ++i) widened[i] = sparse::from_bf16(got[i]);
            test::expect_close(widened, want, 8e-3, "bf16");
          }
        }
}

// Several threads share group pairs and, for a narrow layer, token tiles.
TEST(Int8NmPrefillLayer, ThreadsAgreeWithOneThread) {
  if (const std::string why = test::lane_skip_reason(jit::Isa::avx512_vnni); !why.empty())
    GTEST_SKIP() << why;
  for (auto [out, in, tokens] :
       {std::tuple<int64_t, int64_t, int64_t>{16, 40, 100}, {200, 72, 37}}) {
    const auto w = two_of_four_s8(out, in, 0.1, static_cast<uint32_t>(out + in));
    const auto w_scale = test::random_floats(static_cast<size_t>(out), 3, 0.001f, 0.02f);
    const auto x = test::random_floats(static_cast<size_t>(tokens * in), 4, -2, 2);
    Int8NmPrefillLinear one(w.data(), w_scale.data(), nullptr, out, in, Activation::none, 1);
    Int8NmPrefillLinear three(w.data(), w_scale.data(), nullptr, out, in, Activation::none, 3);
    QuantizedInput::Impl q;
    one.quantize(x.data(), tokens, q);
    std::vector<float> a(static_cast<size_t>(tokens * out)), b(a.size());
    one.run(q, a.data(), 0.0f, nullptr);
    three.run(q, b.data(), 0.0f, nullptr);
    EXPECT_EQ(a, b) << out << "x" << in << " tokens=" << tokens;
  }
}

// Through the public API: pattern 2:4 in int8.
TEST(Int8NmApi, PatternTwoOfFourRunsTheNmKernel) {
  const int64_t out = 40, in = 130;
  const auto wf =
      sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), 3), out, in, 2, 4);
  LinearOptions o;
  o.dtype = DType::int8;
  o.pattern = Pattern::n_of_m(2, 4);
  const auto layer = SparseLinear::pack(wf.data(), out, in, nullptr, o);
  EXPECT_NE(layer.info().decode_kernel.find("int8-2:4"), std::string::npos);
  // Longer calls: the AVX-512 VNNI prefill kernel (unless oneDNN's int8 GEMM runs on AMX), else
  // oneDNN's exact (VNNI) int8 GEMM, else the exact 4x1 kernel.
  if (jit::best_int8_isa() == jit::Isa::avx512_vnni && !onednn_runs_amx(DType::int8))
    EXPECT_EQ(layer.info().kernel, "jit:int8-2:4:avx512_vnni");
  else if (onednn_int8_is_exact())
    EXPECT_EQ(layer.info().kernel, "onednn:int8-dense");
  else
    EXPECT_NE(layer.info().kernel.find("int8-4x1"), std::string::npos) << layer.info().kernel;
  EXPECT_EQ(layer.info().pattern, "2:4");
  for (int64_t tokens : {1, 4, 6, 40}) {
    const auto x = test::random_floats(static_cast<size_t>(tokens * in), 4);
    std::vector<int8_t> wq(wf.size()), xq(x.size());
    std::vector<float> ws(static_cast<size_t>(out)), xs(static_cast<size_t>(tokens));
    sparse::quantize_rows(wf.data(), out, in, wq.data(), ws.data());
    sparse::quantize_rows(x.data(), tokens, in, xq.data(), xs.data());
    std::vector<float> want(static_cast<size_t>(tokens * out)), got(want.size());
    sparse::linear_int8(xq.data(), xs.data(), tokens, wq.data(), ws.data(), out, in, {},
                        want.data());
    layer.forward(x.data(), tokens, got.data());
    test::expect_close(got, want, 2e-5, "y");
  }
}

}  // namespace
}  // namespace sparq
