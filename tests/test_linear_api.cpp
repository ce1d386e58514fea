// The public API, sparq::SparseLinear, against the reference kernels: int8 4x1 and auto layers,
// the low-level quantize_input/forward entry with fp32 and requantized int8 output, the dense
// oneDNN layers, info(), kernel choice, thread determinism, and every argument error.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "jit/cpu_features.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "sparse/stats.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/kernel_thresholds.hpp"
#include "src/threading.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

constexpr float kSentinel = -12345.0f;  // fills y before a call; any element left over fails
constexpr int64_t kGuard = 16;          // elements past the end of y that must stay untouched

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// A dense random weight with round(sparsity * blocks) of its 4x1 blocks pruned.
std::vector<float> pruned_weight(int64_t out, int64_t in, double sparsity, uint32_t seed) {
  const auto dense = test::random_floats(sz(out * in), seed);
  return sparse::prune_blocks(dense, out, in, BlockShape{4, 1}, sparsity);
}

// x [tokens x in] in [-2, 2]; token 3 (when present) is all zeros, which quantizes to scale 0.
std::vector<float> input(int64_t tokens, int64_t in, uint32_t seed) {
  auto x = test::random_floats(sz(tokens * in), seed, -2.0f, 2.0f);
  if (tokens > 3)
    for (int64_t i = 0; i < in; ++i) x[sz(3 * in + i)] = 0.0f;
  return x;
}

// The oracle for int8 layers: the weight quantized per output row, x per token, then
// sparse::linear_int8 with the layer's epilogue.
std::vector<float> reference_int8(const std::vector<float>& w, int64_t out, int64_t in,
                                  const float* bias, const std::vector<float>& x, int64_t tokens,
                                  Activation activation, const float* residual) {
  std::vector<int8_t> wq(sz(out * in)), xq(sz(tokens * in));
  std::vector<float> w_scale(sz(out)), x_scale(sz(tokens));
  sparse::quantize_rows(w.data(), out, in, wq.data(), w_scale.data());
  sparse::quantize_rows(x.data(), tokens, in, xq.data(), x_scale.data());
  std::vector<float> y(sz(tokens * out));
  sparse::linear_int8(xq.data(), x_scale.data(), tokens, wq.data(), w_scale.data(), out, in,
                      {bias, activation, residual}, y.data());
  return y;
}

// Runs forward(x, tokens, y, residual) into a buffer with a guard zone past its end; checks the
// guard and returns y.
std::vector<float> run_forward(const SparseLinear& layer, const std::vector<float>& x,
                               int64_t tokens, const float* residual) {
  const int64_t n = tokens * layer.out_features();
  std::vector<float> y(sz(n + kGuard), kSentinel);
  layer.forward(x.data(), tokens, y.data(), residual);
  for (int64_t i = n; i < n + kGuard; ++i)
    EXPECT_EQ(y[sz(i)], kSentinel) << "forward wrote past the end of y at element " << i;
  y.resize(sz(n));
  return y;
}

LinearOptions options(DType dtype, Pattern pattern, Activation activation = Activation::none,
                      int threads = 0) {
  LinearOptions o;
  o.dtype = dtype;
  o.pattern = pattern;
  o.activation = activation;
  o.threads = threads;
  return o;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// oneDNN's int8 GEMM is exact only with VNNI; elsewhere dense int8 layers run on sparq's kernel.
bool dense_int8_on_onednn() { return sparq::onednn_int8_is_exact(); }

bool is_block_kernel(const std::string& kernel) {
  return starts_with(kernel, "jit:") || starts_with(kernel, "cpp:");
}

// Where oneDNN's GEMM of the dtype runs on AMX tiles, auto runs the longer calls of weights with
// too few zero 4x1 blocks on it (src/kernel_thresholds.hpp).
bool auto_runs_amx(const LinearInfo& info, DType dtype, const Pattern& pattern) {
  if (pattern.kind != Pattern::Kind::automatic || !onednn_runs_amx(dtype)) return false;
  return info.block_sparsity <
         (dtype == DType::int8 ? kMinBlockSparsityAgainstAmxInt8 : kMinBlockSparsityAgainstAmxBf16);
}

// ------------------------------------------------------------------------------------------------
// int8 layers against the reference

TEST(SparseLinearInt8, MatchesReferenceOverShapesAndTokenCounts) {
  const int64_t out = 70;
  uint32_t seed = 10;
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::automatic()})
    for (int64_t in : {96, 33}) {
      const auto w = pruned_weight(out, in, 0.8, seed++);
      const auto bias = test::random_floats(sz(out), seed++);
      const auto layer =
          SparseLinear::pack(w.data(), out, in, bias.data(), options(DType::int8, pattern));
      EXPECT_EQ(layer.info().pattern, "4x1") << "pattern " << pattern.to_string();
      EXPECT_EQ(is_block_kernel(layer.info().kernel),
                !auto_runs_amx(layer.info(), DType::int8, pattern))
          << layer.info().kernel;
      for (int64_t tokens : {1, 7, 64, 65, 130}) {
        SCOPED_TRACE(testing::Message() << "pattern=" << pattern.to_string() << " out=" << out
                                        << " in=" << in << " tokens=" << tokens);
        const auto x = input(tokens, in, seed++);
        const auto want =
            reference_int8(w, out, in, bias.data(), x, tokens, Activation::none, nullptr);
        test::expect_close(run_forward(layer, x, tokens, nullptr), want, 2e-5, "y");
      }
    }
}

TEST(SparseLinearInt8, ActivationsResidualAndNoBias) {
  const int64_t out = 70;
  uint32_t seed = 50;
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::automatic()})
    for (int64_t in : {96, 33})
      for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                             Activation::gelu_erf, Activation::silu})
        for (bool residual : {false, true})
          for (bool with_bias : {true, false}) {
            SCOPED_TRACE(testing::Message() << "pattern=" << pattern.to_string() << " in=" << in
                                            << " act=" << to_string(act) << " residual=" << residual
                                            << " bias=" << with_bias);
            const int64_t tokens = 65;
            const auto w = pruned_weight(out, in, 0.8, seed++);
            const auto bias = test::random_floats(sz(out), seed++);
            const auto res = test::random_floats(sz(tokens * out), seed++);
            const auto x = input(tokens, in, seed++);
            const float* b = with_bias ? bias.data() : nullptr;
            const float* r = residual ? res.data() : nullptr;
            const auto layer =
                SparseLinear::pack(w.data(), out, in, b, options(DType::int8, pattern, act));
            const auto want = reference_int8(w, out, in, b, x, tokens, act, r);
            test::expect_close(run_forward(layer, x, tokens, r), want, 2e-5, "y");
          }
}

// ------------------------------------------------------------------------------------------------
// The low-level entry: quantize_input + forward(q, ...)

TEST(SparseLinearInt8, QuantizedInputEqualsForward) {
  const int64_t out = 70, in = 96;
  const auto w = pruned_weight(out, in, 0.8, 70);
  const auto bias = test::random_floats(sz(out), 71);
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()}) {
    const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                          options(DType::int8, pattern, Activation::gelu_tanh));
    QuantizedInput q;  // reused: its buffers must handle a shrinking token count
    for (int64_t tokens : {130, 7, 65}) {
      for (bool residual : {false, true}) {
        SCOPED_TRACE(testing::Message() << "pattern=" << pattern.to_string() << " tokens=" << tokens
                                        << " residual=" << residual);
        const auto x = input(tokens, in, static_cast<uint32_t>(72 + tokens));
        const auto res = test::random_floats(sz(tokens * out), 73);
        const float* r = residual ? res.data() : nullptr;
        layer.quantize_input(x.data(), tokens, q);
        EXPECT_EQ(q.tokens(), tokens);
        std::vector<float> got(sz(tokens * out), kSentinel);
        layer.forward(q, got.data(), r);
        EXPECT_EQ(std::count(got.begin(), got.end(), kSentinel), 0) << "y not fully written";
        EXPECT_EQ(got, run_forward(layer, x, tokens, r)) << "forward(q) differs from forward(x)";
        if (!residual) continue;
        // A residual that is y itself (an in-place residual add) gives what a separate copy
        // gives: the dense layer writes its int32 sums into an fp32 y, and must not do so
        // before the residual is read.
        std::vector<float> in_y = res;
        layer.forward(q, in_y.data(), in_y.data());
        EXPECT_EQ(in_y, got) << "residual in y";
      }
    }
  }
}

TEST(SparseLinearInt8, RequantizedOutputMatchesFp32WithinOne) {
  const int64_t out = 70, in = 96, tokens = 130;
  const auto w = pruned_weight(out, in, 0.8, 80);
  const auto bias = test::random_floats(sz(out), 81);
  const auto x = input(tokens, in, 82);
  const auto res = test::random_floats(sz(tokens * out), 83);
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()})
    for (Activation act : {Activation::none, Activation::gelu_tanh})
      for (bool residual : {false, true}) {
        SCOPED_TRACE(testing::Message() << "pattern=" << pattern.to_string()
                                        << " act=" << to_string(act) << " residual=" << residual);
        const float* r = residual ? res.data() : nullptr;
        const auto layer =
            SparseLinear::pack(w.data(), out, in, bias.data(), options(DType::int8, pattern, act));
        QuantizedInput q;
        layer.quantize_input(x.data(), tokens, q);
        std::vector<float> fp32(sz(tokens * out), kSentinel);
        layer.forward(q, fp32.data(), r);
        // A scale that puts most outputs well inside the int8 range and saturates a few.
        const float y_scale = 0.03f;
        std::vector<int8_t> got(sz(tokens * out + kGuard), 99);
        layer.forward(q, got.data(), y_scale, r);
        int64_t off_by_one = 0, saturated = 0;
        for (int64_t i = 0; i < tokens * out; ++i) {
          const int want = sparse::requantize(fp32[sz(i)], 1.0f / y_scale);
          ASSERT_LE(std::abs(got[sz(i)] - want), 1)
              << "element " << i << ": got " << int{got[sz(i)]} << ", want " << want << " (fp32 "
              << fp32[sz(i)] << ")";
          off_by_one += got[sz(i)] != want;
          saturated += want == 127 || want == -128;
        }
        EXPECT_LT(off_by_one, tokens * out / 100) << "too many off-by-one results";
        EXPECT_LT(saturated, tokens * out / 2) << "y_scale saturates most outputs: a weak test";
        for (int64_t i = tokens * out; i < tokens * out + kGuard; ++i)
          EXPECT_EQ(got[sz(i)], 99) << "forward wrote past the end of y at element " << i;
      }
}

// ------------------------------------------------------------------------------------------------
// Dense layers on oneDNN

// A dense layer's oneDNN primitives (one per token count) share the weights reordered for the
// first one wherever their implementation takes that layout; shared or not, each computes what a
// primitive with weights of its own computes, bit for bit (int8, s32 sums).
TEST(SparseLinearDense, PrimitivesShareTheirReorderedWeights) {
  const int64_t out = 300, in = 200;
  const auto w = test::random_int8(static_cast<size_t>(out * in), 61);
  const auto x = test::random_int8(static_cast<size_t>(64 * in), 62);
  std::shared_ptr<DnnlSharedWeights> share;
  int shared = 0;
  for (int64_t tokens : {1, 4, 64, 3}) {
    const DnnlMatmul with_share(DnnlMatmul::Kind::s8s8_s32, tokens, out, in, w.data(), nullptr,
                                nullptr, Activation::none, 2, &share);
    const DnnlMatmul alone(DnnlMatmul::Kind::s8s8_s32, tokens, out, in, w.data(), nullptr, nullptr,
                           Activation::none, 2);
    ASSERT_NE(share, nullptr);
    shared += !with_share.owns_weights();
    EXPECT_EQ(with_share.weight_bytes(), alone.weight_bytes());
    std::vector<int32_t> a(static_cast<size_t>(tokens * out)), b(a.size());
    with_share.run(x.data(), a.data());
    alone.run(x.data(), b.data());
    ASSERT_EQ(a, b) << tokens << " tokens, " << with_share.implementation();
  }
  // The first primitive reorders; on CPUs where oneDNN picks one implementation for every token
  // count (VNNI) the others share.
  std::cout << "[ info ] " << shared << " of 3 later primitives shared the weights\n";
  if (jit::can_run(jit::Isa::avx512_vnni)) {
    EXPECT_EQ(shared, 3);
  }
}

// Once a layer has released its plain weight, its later primitives are built from the shared
// weights alone (w null): where they cannot share them, they reorder a copy of their own from
// them. Either way the bits equal those of a primitive built from the plain weight.
TEST(SparseLinearDense, PrimitivesBuildFromTheSharedWeightsAlone) {
  const int64_t out = 300, in = 200;
  const auto w8 = test::random_int8(static_cast<size_t>(out * in), 63);
  const auto wf = test::random_floats(static_cast<size_t>(out * in), 64);
  const auto x8 = test::random_int8(static_cast<size_t>(64 * in), 65);
  const auto xf = test::random_floats(static_cast<size_t>(64 * in), 66);
  int reordered = 0;
  for (bool floating : {false, true}) {
    const DnnlMatmul::Kind kind = floating ? DnnlMatmul::Kind::f32 : DnnlMatmul::Kind::s8s8_s32;
    const void* w = floating ? static_cast<const void*>(wf.data()) : w8.data();
    const void* x = floating ? static_cast<const void*>(xf.data()) : x8.data();
    std::shared_ptr<DnnlSharedWeights> share;
    const DnnlMatmul first(kind, 64, out, in, w, nullptr, nullptr, Activation::none, 1, &share);
    ASSERT_NE(share, nullptr);
    for (int64_t tokens : {1, 2, 4, 17, 64}) {
      const DnnlMatmul from_share(kind, tokens, out, in, nullptr, nullptr, nullptr,
                                  Activation::none, 1, &share);
      const DnnlMatmul alone(kind, tokens, out, in, w, nullptr, nullptr, Activation::none, 1);
      reordered += from_share.owns_weights();
      std::vector<uint32_t> a(static_cast<size_t>(tokens * out)), b(a.size());  // s32 or f32 bits
      from_share.run(x, a.data());
      alone.run(x, b.data());
      ASSERT_EQ(a, b) << (floating ? "f32, " : "int8, ") << tokens << " tokens, "
                      << from_share.implementation();
    }
  }
  std::cout << "[ info ] " << reordered
            << " of 10 primitives reordered their own copy from the shared weights\n";
  // Where oneDNN picks one layout for every token count (as on this project's machines) the
  // reorder above never runs; a share whose layout no fp32 implementation takes forces it: the
  // int8 weights' share, reordered (and converted) into an fp32 primitive's layout, computes
  // what the same weights given as floats do.
  {
    std::shared_ptr<DnnlSharedWeights> share;
    const DnnlMatmul int8(DnnlMatmul::Kind::s8s8_s32, 64, out, in, w8.data(), nullptr, nullptr,
                          Activation::none, 1, &share);
    const std::vector<float> w8_as_f32(w8.begin(), w8.end());
    for (int64_t tokens : {1, 64}) {
      const DnnlMatmul from_share(DnnlMatmul::Kind::f32, tokens, out, in, nullptr, nullptr, nullptr,
                                  Activation::none, 1, &share);
      EXPECT_TRUE(from_share.owns_weights());
      const DnnlMatmul alone(DnnlMatmul::Kind::f32, tokens, out, in, w8_as_f32.data(), nullptr,
                             nullptr, Activation::none, 1);
      std::vector<float> a(static_cast<size_t>(tokens * out)), b(a.size());
      from_share.run(xf.data(), a.data());
      alone.run(xf.data(), b.data());
      ASSERT_EQ(a, b) << "f32 from the int8 share, " << tokens << " tokens";
    }
  }
  // Without a shared layout and without a plain weight there is nothing to build from.
  EXPECT_THROW(
      DnnlMatmul(DnnlMatmul::Kind::f32, 1, out, in, nullptr, nullptr, nullptr, Activation::none, 1),
      InvalidArgument);
}

TEST(SparseLinearDense, Int8MatchesReference) {
  uint32_t seed = 90;
  for (int64_t in : {96, 33})
    for (double sparsity : {0.0, 0.8})
      for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                             Activation::gelu_erf, Activation::silu})
        for (int64_t tokens : {1, 65}) {
          SCOPED_TRACE(testing::Message() << "in=" << in << " sparsity=" << sparsity
                                          << " act=" << to_string(act) << " tokens=" << tokens);
          const int64_t out = 70;
          const auto w = pruned_weight(out, in, sparsity, seed++);
          const auto bias = test::random_floats(sz(out), seed++);
          const auto res = test::random_floats(sz(tokens * out), seed++);
          const auto x = input(tokens, in, seed++);
          const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                                options(DType::int8, Pattern::dense(), act));
          if (dense_int8_on_onednn())
            EXPECT_EQ(layer.info().kernel, "onednn:int8-dense");
          else
            EXPECT_TRUE(is_block_kernel(layer.info().kernel)) << layer.info().kernel;
          EXPECT_EQ(layer.info().pattern, "dense");
          const auto want = reference_int8(w, out, in, bias.data(), x, tokens, act, res.data());
          test::expect_close(run_forward(layer, x, tokens, res.data()), want, 2e-5, "y");
        }
}

// Past 65793 inputs the sums of u8 activations (q + 128) could pass 2^31, so the dense int8 layer
// multiplies s8 activations there: that path against the reference.
TEST(SparseLinearDense, Int8PastTheU8RangeMatchesReference) {
  if (!dense_int8_on_onednn()) GTEST_SKIP() << "dense int8 layers run on sparq's kernel here";
  // All-maximal weights and inputs: the largest sums the s8 path makes at this width.
  const int64_t out = 6, in = 70001, tokens = 3;
  const std::vector<float> w(sz(out * in), 1.0f), x(sz(tokens * in), 1.0f);
  const auto bias = test::random_floats(sz(out), 92);
  const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                        options(DType::int8, Pattern::dense(), Activation::none));
  EXPECT_EQ(layer.info().kernel, "onednn:int8-dense");
  const auto want = reference_int8(w, out, in, bias.data(), x, tokens, Activation::none, nullptr);
  test::expect_close(run_forward(layer, x, tokens, nullptr), want, 2e-5, "y");
}

// f32 and bf16 layers, dense on oneDNN and sparse on the f32 4x1 kernel, against the reference of
// their dtype (bf16: weights and activations rounded to bf16, fp32 sums).
TEST(SparseLinearFloat, MatchesReference) {
  uint32_t seed = 120;
  for (DType dtype : {DType::f32, DType::bf16})
    for (const Pattern& pattern : {Pattern::dense(), Pattern::automatic(), Pattern::blocks(4, 1)})
      for (int64_t in : {96, 33})
        for (Activation act : {Activation::none, Activation::relu, Activation::gelu_tanh,
                               Activation::gelu_erf, Activation::silu})
          for (bool residual : {false, true})
            for (int64_t tokens : {1, 65}) {
              SCOPED_TRACE(testing::Message()
                           << to_string(dtype) << " pattern=" << pattern.to_string() << " in=" << in
                           << " act=" << to_string(act) << " residual=" << residual
                           << " tokens=" << tokens);
              const int64_t out = 70;
              const auto w = pruned_weight(out, in, 0.8, seed++);
              const auto bias = test::random_floats(sz(out), seed++);
              const auto res = test::random_floats(sz(tokens * out), seed++);
              const auto x = input(tokens, in, seed++);
              const float* r = residual ? res.data() : nullptr;
              const auto layer =
                  SparseLinear::pack(w.data(), out, in, bias.data(), options(dtype, pattern, act));
              if (pattern.kind == Pattern::Kind::dense) {
                EXPECT_EQ(layer.info().kernel, dtype == DType::bf16 && onednn_has_bf16()
                                                   ? "onednn:bf16-dense"
                                                   : "onednn:f32-dense");
                EXPECT_EQ(layer.info().pattern, "dense");
              } else if (auto_runs_amx(layer.info(), dtype, pattern)) {
                EXPECT_EQ(layer.info().kernel, "onednn:bf16-dense");
                EXPECT_EQ(layer.info().pattern, "4x1");
              } else {
                EXPECT_TRUE(is_block_kernel(layer.info().kernel)) << layer.info().kernel;
                // bf16 layers run the vdpbf16ps kernel where the CPU has AVX512_BF16 and its
                // tuning prefers it (not on Intel: CpuTuning::bf16_tiles_on_vdpbf16ps).
                const bool native_bf16 = dtype == DType::bf16 && jit::bf16_tiles_on_vdpbf16ps();
                EXPECT_NE(layer.info().kernel.find(native_bf16 ? "bf16-4x1" : "f32-4x1"),
                          std::string::npos)
                    << layer.info().kernel;
                EXPECT_EQ(layer.info().pattern, "4x1");
              }
              if (dtype == DType::bf16) {
                EXPECT_NE(layer.info().reason.find("bf16"), std::string::npos);
              }
              std::vector<float> want(sz(tokens * out));
              if (dtype == DType::f32)
                sparse::linear_f32(x.data(), tokens, w.data(), out, in, {bias.data(), act, r},
                                   want.data());
              else
                sparse::linear_bf16(x.data(), tokens, sparse::to_bf16(w).data(), out, in,
                                    {bias.data(), act, r}, want.data());
              test::expect_close(run_forward(layer, x, tokens, r), want, 1e-4, "y");
            }
}

TEST(SparseLinearFloat, TwoOfFourPacksToUnderTwoThirdsOfDense) {
  const int64_t out = 256, in = 512;
  const auto w = sparse::prune_n_m(test::random_floats(sz(out * in), 650), out, in, 2, 4);
  const auto layer =
      SparseLinear::pack(w.data(), out, in, nullptr, options(DType::f32, Pattern::n_of_m(2, 4)));
  const LinearInfo info = layer.info();
  const double dense = double(out * in * sizeof(float));
  // The prefill kernel's 2:4 entries: 62.5 % of dense plus group offsets.
  const double ratio = double(info.packed_bytes - info.decode_packed_bytes) / dense;
  EXPECT_GT(ratio, 0.62);
  EXPECT_LT(ratio, 0.64);
  // On AVX-512 (SPARQ_MAX_ISA allowing), decode-sized calls have the 2:4 decode layout too: 144
  // of 256 bytes per 16 x 4.
  if (jit::best_float_isa() >= jit::Isa::avx512) {
    EXPECT_NE(info.decode_kernel.find("2:4-decode"), std::string::npos) << info.decode_kernel;
    EXPECT_NEAR(double(info.decode_packed_bytes) / dense, 0.5625, 0.01);
  }
}

// 2:4 f32 and bf16 layers (explicit and chosen by auto) against the reference of their dtype.
TEST(SparseLinearFloat, TwoOfFourMatchesReference) {
  uint32_t seed = 700;
  for (DType dtype : {DType::f32, DType::bf16})
    for (const Pattern& pattern : {Pattern::n_of_m(2, 4), Pattern::automatic()})
      for (int64_t in : {96, 35})
        for (Activation act : {Activation::none, Activation::gelu_tanh})
          for (int64_t tokens : {1, 37, 100}) {
            SCOPED_TRACE(testing::Message() << to_string(dtype) << " " << pattern.to_string()
                                            << " in=" << in << " tokens=" << tokens);
            const int64_t out = 30;
            const auto w =
                sparse::prune_n_m(test::random_floats(sz(out * in), seed++), out, in, 2, 4);
            const auto bias = test::random_floats(sz(out), seed++);
            const auto res = test::random_floats(sz(tokens * out), seed++);
            const auto x = input(tokens, in, seed++);
            const auto layer =
                SparseLinear::pack(w.data(), out, in, bias.data(), options(dtype, pattern, act));
            EXPECT_EQ(layer.info().pattern, "2:4");
            // bf16 2:4 where the CPU has AVX-512 with BF16: calls of more than 4 tokens on the
            // bf16 table kernel (37: 32 + 16-token tiles; 100: 64 + 32 + 16), or on oneDNN's
            // bf16 GEMM where it runs on AMX; the rest on the decode kernel.
            const bool amx = dtype == DType::bf16 && onednn_runs_amx(dtype);
            const bool table = dtype == DType::bf16 && jit::native_bf16_available() &&
                               jit::best_float_isa() == jit::Isa::avx512 && !amx;
            EXPECT_NE(layer.info().kernel.find(amx     ? "onednn:bf16-dense"
                                               : table ? "jit:bf16-2:4"
                                                       : "f32-2:4"),
                      std::string::npos)
                << layer.info().kernel;
            std::vector<float> want(sz(tokens * out));
            if (dtype == DType::f32)
              sparse::linear_f32(x.data(), tokens, w.data(), out, in,
                                 {bias.data(), act, res.data()}, want.data());
            else
              sparse::linear_bf16(x.data(), tokens, sparse::to_bf16(w).data(), out, in,
                                  {bias.data(), act, res.data()}, want.data());
            test::expect_close(run_forward(layer, x, tokens, res.data()), want, 1e-4, "y");
          }
}

// int8 layers pruned in 16x1 blocks: calls of <= 4 tokens run the decode kernel, longer ones the
// 4x1 kernel; both against the reference, through forward(x) and through a QuantizedInput.
TEST(SparseLinearDecode, SixteenByOneMatchesReference) {
  uint32_t seed = 800;
  for (const Pattern& pattern : {Pattern::blocks(16, 1), Pattern::automatic()})
    for (int64_t out : {64, 37})
      for (int64_t tokens : {1, 3, 4, 5, 17}) {
        SCOPED_TRACE(testing::Message()
                     << pattern.to_string() << " out=" << out << " tokens=" << tokens);
        const int64_t in = 80;
        const auto w = sparse::prune_blocks(test::random_floats(sz(out * in), seed++), out, in,
                                            BlockShape{16, 1}, 0.7);
        const auto bias = test::random_floats(sz(out), seed++);
        const auto res = test::random_floats(sz(tokens * out), seed++);
        const auto x = input(tokens, in, seed++);
        const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                              options(DType::int8, pattern, Activation::relu));
        const LinearInfo info = layer.info();
        EXPECT_NE(info.decode_kernel.find("int8-16x1-decode"), std::string::npos) << info.reason;
        EXPECT_NE(info.reason.find("decode"), std::string::npos);
        if (pattern.kind == Pattern::Kind::block) {
          EXPECT_EQ(info.pattern, "16x1");
        }
        const auto want =
            reference_int8(w, out, in, bias.data(), x, tokens, Activation::relu, res.data());
        test::expect_close(run_forward(layer, x, tokens, res.data()), want, 2e-5, "forward(x)");
        QuantizedInput q;
        layer.quantize_input(x.data(), tokens, q);
        EXPECT_EQ(q.tokens(), tokens);
        std::vector<float> y(sz(tokens * out));
        layer.forward(q, y.data(), res.data());
        test::expect_close(y, want, 2e-5, "forward(q)");
      }
}

// Block patterns other than 4x1 run on the 4x1 kernels, which skip every all-zero 4x1 block;
// info() says so, and the result is right whatever the block shape.
TEST(SparseLinearPatterns, OtherBlockShapesRunOnTheFourByOneKernels) {
  uint32_t seed = 870;
  for (DType dtype : {DType::int8, DType::f32})
    for (BlockShape shape : {BlockShape{1, 4}, BlockShape{4, 4}, BlockShape{8, 1}}) {
      const int64_t out = 40, in = 48, tokens = 21;
      SCOPED_TRACE(testing::Message()
                   << to_string(dtype) << " " << shape.rows << "x" << shape.cols);
      const Pattern pattern = Pattern::blocks(shape.rows, shape.cols);
      const auto w =
          sparse::prune_blocks(test::random_floats(sz(out * in), seed++), out, in, shape, 0.8);
      const auto x = input(tokens, in, seed++);
      const auto layer = SparseLinear::pack(w.data(), out, in, nullptr, options(dtype, pattern));
      EXPECT_EQ(layer.info().pattern, pattern.to_string());
      EXPECT_NE(layer.info().reason.find("4x1 kernel"), std::string::npos) << layer.info().reason;
      if (shape.rows % 4 != 0) {
        EXPECT_NE(layer.info().reason.find("do not stack"), std::string::npos);
      }
      std::vector<float> want(sz(tokens * out));
      if (dtype == DType::f32)
        sparse::linear_f32(x.data(), tokens, w.data(), out, in, {}, want.data());
      else
        want = reference_int8(w, out, in, nullptr, x, tokens, Activation::none, nullptr);
      test::expect_close(run_forward(layer, x, tokens, nullptr), want, 2e-5, "y");
    }
}

// Under auto, a moderately sparse f32 layer runs decode-sized calls dense (oneDNN), a sparser one
// on the 16x1 decode kernel, and longer calls on the 4x1 kernel; all match the reference.
TEST(SparseLinearFloat, AutoRunsDecodeCallsDenseBelowTheMeasuredThreshold) {
  const int64_t out = 48, in = 64;
  for (double sparsity : {0.6, 0.9}) {
    SCOPED_TRACE(sparsity);
    const auto w = pruned_weight(out, in, sparsity, 880);
    const auto bias = test::random_floats(sz(out), 881);
    const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                          options(DType::f32, Pattern::automatic()));
    EXPECT_NE(layer.info().kernel.find("f32-4x1"), std::string::npos);
    if (sparsity < 0.75) {
      EXPECT_EQ(layer.info().decode_kernel, "onednn:f32-dense");
      EXPECT_GT(layer.info().decode_packed_bytes, 0);
    } else {
      // 90 % of 4x1 blocks zero leaves about 65 % of 16x1 blocks zero: the decode kernel.
      EXPECT_NE(layer.info().decode_kernel.find("f32-16x1-decode"), std::string::npos)
          << layer.info().decode_kernel;
    }
    for (int64_t tokens : {1, 4, 5, 30}) {
      const auto x = input(tokens, in, static_cast<uint32_t>(890 + tokens));
      std::vector<float> want(sz(tokens * out));
      sparse::linear_f32(x.data(), tokens, w.data(), out, in, {bias.data()}, want.data());
      test::expect_close(run_forward(layer, x, tokens, nullptr), want, 1e-5, "y");
    }
  }
}

// ------------------------------------------------------------------------------------------------
// info() and the kernel choice

TEST(SparseLinearInfo, BlockSparseLayer) {
  const int64_t out = 256, in = 256;
  const auto w = pruned_weight(out, in, 0.9, 150);
  const auto bias = test::random_floats(sz(out), 151);
  const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                        options(DType::int8, Pattern::blocks(4, 1)));
  const LinearInfo info = layer.info();
  EXPECT_TRUE(is_block_kernel(info.kernel)) << info.kernel;
  EXPECT_NE(info.kernel.find("int8-4x1"), std::string::npos) << info.kernel;
  EXPECT_EQ(info.pattern, "4x1");
  EXPECT_EQ(info.isa, jit::isa_name(jit::best_int8_isa()));
  EXPECT_DOUBLE_EQ(info.sparsity, sparse::sparsity(w));
  EXPECT_DOUBLE_EQ(info.block_sparsity, sparse::block_sparsity(w, out, in, {4, 1}));
  EXPECT_NEAR(info.block_sparsity, 0.9, 0.01);
  EXPECT_GT(info.packed_bytes, 0);
  EXPECT_LT(info.packed_bytes, out * in) << "a 90% sparse 4x1 layer is bigger than dense int8";
  EXPECT_FALSE(info.reason.empty());
  EXPECT_GT(info.threads, 0);
  EXPECT_EQ(layer.out_features(), out);
  EXPECT_EQ(layer.in_features(), in);
}

TEST(SparseLinearInfo, DenseLayers) {
  const int64_t out = 70, in = 33;
  const auto w = pruned_weight(out, in, 0.3, 160);
  for (DType dtype : {DType::int8, DType::f32}) {
    SCOPED_TRACE(to_string(dtype));
    const auto layer =
        SparseLinear::pack(w.data(), out, in, nullptr, options(dtype, Pattern::dense(), {}, 3));
    const LinearInfo info = layer.info();
    if (dtype == DType::f32 || dense_int8_on_onednn()) {
      EXPECT_TRUE(starts_with(info.kernel, "onednn:")) << info.kernel;
    } else {
      EXPECT_NE(info.reason.find("VNNI"), std::string::npos) << info.reason;
    }
    EXPECT_EQ(info.pattern, "dense");
    EXPECT_DOUBLE_EQ(info.sparsity, sparse::sparsity(w));
    EXPECT_DOUBLE_EQ(info.block_sparsity, sparse::block_sparsity(w, out, in, {4, 1}));
    EXPECT_GT(info.packed_bytes, 0);
    EXPECT_FALSE(info.reason.empty());
    EXPECT_EQ(info.threads, 3);
  }
}

TEST(SparseLinearInfo, ThreadsZeroResolvesToAllCores) {
  const auto w = pruned_weight(8, 8, 0.5, 165);
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()}) {
    const auto layer =
        SparseLinear::pack(w.data(), 8, 8, nullptr, options(DType::int8, pattern, {}, 0));
    EXPECT_GT(layer.info().threads, 0) << pattern.to_string();
  }
}

TEST(SparseLinearInfo, AutoPicksByBlockSparsity) {
  const int64_t out = 128, in = 96;
  const auto sparse_w = pruned_weight(out, in, 0.9, 170);
  const auto dense_w = pruned_weight(out, in, 0.1, 171);
  const auto sparse_layer = SparseLinear::pack(sparse_w.data(), out, in, nullptr,
                                               options(DType::int8, Pattern::automatic()));
  EXPECT_TRUE(is_block_kernel(sparse_layer.info().kernel)) << sparse_layer.info().kernel;
  EXPECT_EQ(sparse_layer.info().pattern, "4x1");
  EXPECT_NE(sparse_layer.info().reason.find("auto"), std::string::npos)
      << sparse_layer.info().reason;

  const auto dense_layer = SparseLinear::pack(dense_w.data(), out, in, nullptr,
                                              options(DType::int8, Pattern::automatic()));
  if (dense_int8_on_onednn()) {
    EXPECT_EQ(dense_layer.info().kernel, "onednn:int8-dense");
  }
  EXPECT_EQ(dense_layer.info().pattern, "dense");
  EXPECT_NE(dense_layer.info().reason.find("auto"), std::string::npos) << dense_layer.info().reason;
}

// The reference of a layer's dtype: int8 quantizes weight and input as the layers do; bf16
// rounds both; f32 is plain.
std::vector<float> reference_for(DType dtype, const std::vector<float>& w, int64_t out, int64_t in,
                                 const float* bias, const std::vector<float>& x, int64_t tokens,
                                 Activation act, const float* residual) {
  if (dtype == DType::int8) return reference_int8(w, out, in, bias, x, tokens, act, residual);
  std::vector<float> y(sz(tokens * out));
  if (dtype == DType::bf16)
    sparse::linear_bf16(x.data(), tokens, sparse::to_bf16(w).data(), out, in, {bias, act, residual},
                        y.data());
  else
    sparse::linear_f32(x.data(), tokens, w.data(), out, in, {bias, act, residual}, y.data());
  return y;
}

// A dense layer on oneDNN over several token counts: its later primitives run from the weights
// reordered for the first (its plain int8 / fp32 copy released by then), each count's output the
// reference's, repeated counts included.
TEST(SparseLinearDense, EveryTokenCountAfterThePlainWeightIsReleased) {
  const int64_t out = 130, in = 96;
  const auto w = pruned_weight(out, in, 0.0, 71);
  const auto bias = test::random_floats(sz(out), 72);
  for (DType dtype : {DType::int8, DType::f32, DType::bf16}) {
    const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                          options(dtype, Pattern::dense(), Activation::silu));
    if (layer.info().kernel.rfind("onednn:", 0) != 0) continue;  // int8 without exact oneDNN
    // More counts than a layer keeps primitives for: the first one, which made the shared
    // weights, is evicted while the others still read them.
    for (int64_t tokens : {5, 1, 64, 5, 2, 3, 4, 6, 7, 8, 9, 10, 11, 1, 12}) {
      const auto x = input(tokens, in, static_cast<uint32_t>(73 + tokens));
      const auto want =
          reference_for(dtype, w, out, in, bias.data(), x, tokens, Activation::silu, nullptr);
      test::expect_close(run_forward(layer, x, tokens, nullptr), want,
                         dtype == DType::bf16 ? 2e-3 : 1e-4,
                         std::string(to_string(dtype)) + ", " + std::to_string(tokens) + " tokens");
    }
  }
}

// Every kernel family, prefill- and decode-sized: one thread and two give the same bits, and
// the right ones.
// One layer of every kernel family on the same shape: int8 4x1, dense, 16x1 (decode kernel), 2:4;
// f32 4x1, 16x1 (decode kernel), 2:4, dense; bf16 4x1 and auto (16x1 decode kernel).
struct FamilyCase {
  DType dtype;
  Pattern pattern;
  const std::vector<float>* w;
};
struct FamilyWeights {
  std::vector<float> w4x1, w16x1, w24;
  std::vector<FamilyCase> cases() const {
    return {
        {DType::int8, Pattern::blocks(4, 1), &w4x1},   {DType::int8, Pattern::dense(), &w4x1},
        {DType::int8, Pattern::blocks(16, 1), &w16x1}, {DType::int8, Pattern::n_of_m(2, 4), &w24},
        {DType::f32, Pattern::blocks(4, 1), &w4x1},    {DType::f32, Pattern::blocks(16, 1), &w16x1},
        {DType::f32, Pattern::n_of_m(2, 4), &w24},     {DType::f32, Pattern::dense(), &w4x1},
        {DType::bf16, Pattern::blocks(4, 1), &w4x1},   {DType::bf16, Pattern::automatic(), &w16x1}};
  }
};
FamilyWeights family_weights(int64_t out, int64_t in, uint32_t seed) {
  return {pruned_weight(out, in, 0.8, seed),
          sparse::prune_blocks(test::random_floats(sz(out * in), seed + 1), out, in,
                               BlockShape{16, 1}, 0.8),
          sparse::prune_n_m(test::random_floats(sz(out * in), seed + 2), out, in, 2, 4)};
}

// The structured fields of info() agree with its kernel strings, for every family and dtype.
TEST(SparseLinearInfo, FamilyAndDtypeFields) {
  const int64_t out = 64, in = 96;
  const FamilyWeights weights = family_weights(out, in, 190);
  for (const FamilyCase& c : weights.cases()) {
    const auto layer =
        SparseLinear::pack(c.w->data(), out, in, nullptr, options(c.dtype, c.pattern));
    const LinearInfo info = layer.info();
    SCOPED_TRACE(info.kernel + " / " + info.decode_kernel);
    EXPECT_EQ(info.dtype, c.dtype);
    ASSERT_FALSE(info.family.empty());
    // The family sits between the implementation prefix and the ISA suffix of the name.
    EXPECT_NE(info.kernel.find(":" + info.family), std::string::npos);
    // int8 layers run int8 families; f32/bf16 ones float families (bf16 may run f32 kernels).
    EXPECT_EQ(info.family.rfind("int8", 0) == 0, c.dtype == DType::int8) << info.family;
    if (info.kernel.rfind("jit:", 0) == 0) {
      EXPECT_EQ(info.kernel, "jit:" + info.family + ":" + info.isa);
    }
    EXPECT_EQ(info.decode_family.empty(), info.decode_kernel.empty());
    if (!info.decode_kernel.empty()) {
      EXPECT_NE(info.decode_kernel.find(info.decode_family), std::string::npos);
    }
  }
}

TEST(SparseLinearThreads, OneAndTwoThreadsAreBitIdentical) {
  const int64_t out = 256, in = 96;
  const FamilyWeights weights = family_weights(out, in, 180);
  const auto bias = test::random_floats(sz(out), 181);
  for (const FamilyCase& c : weights.cases())
    for (int64_t tokens : {130, 3}) {
      SCOPED_TRACE(testing::Message()
                   << to_string(c.dtype) << " " << c.pattern.to_string() << " tokens=" << tokens);
      const auto res = test::random_floats(sz(tokens * out), 182);
      const auto x = input(tokens, in, 183);
      const auto one = SparseLinear::pack(c.w->data(), out, in, bias.data(),
                                          options(c.dtype, c.pattern, Activation::gelu_tanh, 1));
      const auto two = SparseLinear::pack(c.w->data(), out, in, bias.data(),
                                          options(c.dtype, c.pattern, Activation::gelu_tanh, 2));
      EXPECT_EQ(one.info().threads, 1);
      EXPECT_EQ(two.info().threads, 2);
      const auto y1 = run_forward(one, x, tokens, res.data());
      EXPECT_EQ(y1, run_forward(two, x, tokens, res.data()));
      // And the result is right, so two equal wrong answers do not pass.
      test::expect_close(y1,
                         reference_for(c.dtype, *c.w, out, in, bias.data(), x, tokens,
                                       Activation::gelu_tanh, res.data()),
                         2e-5, "y");
    }
}

// bf16 output from every kernel family, prefill- and decode-sized, dense included: exactly the
// fp32 output rounded to nearest even, through forward_bf16(x) and (int8) forward_bf16(q).
TEST(SparseLinearOutput, Bf16IsTheRoundedFp32Result) {
  const int64_t out = 70, in = 96;
  const FamilyWeights weights = family_weights(out, in, 980);
  const auto bias = test::random_floats(sz(out), 983);
  for (const FamilyCase& c : weights.cases())
    for (int64_t tokens : {37, 3}) {
      SCOPED_TRACE(testing::Message()
                   << to_string(c.dtype) << " " << c.pattern.to_string() << " tokens=" << tokens);
      const auto x = input(tokens, in, 984);
      const auto res = test::random_floats(sz(tokens * out), 985);
      const auto layer = SparseLinear::pack(c.w->data(), out, in, bias.data(),
                                            options(c.dtype, c.pattern, Activation::gelu_erf));
      const auto y32 = run_forward(layer, x, tokens, res.data());
      const auto want = sparse::to_bf16(y32);
      std::vector<uint16_t> got(want.size() + 4, 0xdead);
      layer.forward_bf16(x.data(), tokens, got.data(), res.data());
      EXPECT_EQ(got[want.size()], 0xdead) << "wrote past the end";
      got.resize(want.size());
      EXPECT_EQ(got, want);
      if (c.dtype == DType::int8) {
        QuantizedInput q;
        layer.quantize_input(x.data(), tokens, q);
        std::vector<uint16_t> from_q(want.size());
        layer.forward_bf16(q, from_q.data(), res.data());
        EXPECT_EQ(from_q, want);
      }
    }
  const auto layer = SparseLinear::pack(weights.w4x1.data(), out, in, nullptr,
                                        options(DType::f32, Pattern::blocks(4, 1)));
  std::vector<uint16_t> y(sz(out));
  const auto x = input(1, in, 986);
  EXPECT_THROW_WITH(layer.forward_bf16(x.data(), 1, nullptr), InvalidArgument, "must not be null");
  EXPECT_THROW_WITH(layer.forward_bf16(x.data(), 0, y.data()), InvalidArgument, "tokens");
}

// Layers pruned in 16x1 blocks, every dtype: calls of <= 4 tokens run a decode kernel, longer ones
// the 4x1 kernel; both match the reference of the dtype.
TEST(SparseLinearDecode, EveryDtypeSixteenByOne) {
  const int64_t out = 50, in = 72;
  const auto w = sparse::prune_blocks(test::random_floats(sz(out * in), 950), out, in,
                                      BlockShape{16, 1}, 0.75);
  const auto bias = test::random_floats(sz(out), 951);
  for (DType dtype : {DType::f32, DType::bf16, DType::int8})
    for (const Pattern& pattern : {Pattern::blocks(16, 1), Pattern::automatic()}) {
      const auto layer = SparseLinear::pack(w.data(), out, in, bias.data(),
                                            options(dtype, pattern, Activation::silu, 2));
      const std::string want_kernel = dtype == DType::int8   ? "int8-16x1-decode"
                                      : dtype == DType::bf16 ? "bf16-16x1-decode"
                                                             : "f32-16x1-decode";
      EXPECT_NE(layer.info().decode_kernel.find(want_kernel), std::string::npos)
          << to_string(dtype) << " " << pattern.to_string() << ": " << layer.info().reason;
      for (int64_t tokens : {1, 3, 4, 5, 21}) {
        SCOPED_TRACE(testing::Message()
                     << to_string(dtype) << " " << pattern.to_string() << " tokens=" << tokens);
        const auto x = input(tokens, in, static_cast<uint32_t>(960 + tokens));
        const auto res = test::random_floats(sz(tokens * out), 970);
        test::expect_close(
            run_forward(layer, x, tokens, res.data()),
            reference_for(dtype, w, out, in, bias.data(), x, tokens, Activation::silu, res.data()),
            2e-5, "y");
      }
    }
}

// ------------------------------------------------------------------------------------------------
// Errors

TEST(SparseLinearErrors, PackRejectsInvalidArguments) {
  const int64_t out = 8, in = 12;
  auto w = pruned_weight(out, in, 0.5, 190);
  const LinearOptions o = options(DType::int8, Pattern::blocks(4, 1));
  EXPECT_THROW_WITH(SparseLinear::pack(nullptr, out, in, nullptr, o), InvalidArgument,
                    "weight must not be null");
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 0, in, nullptr, o), InvalidArgument, "out=0");
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), out, -1, nullptr, o), InvalidArgument, "in=-1");
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), out, in, nullptr,
                                       options(DType::int8, Pattern::dense(), {}, -2)),
                    InvalidArgument, "threads must be >= 0");

  auto bad = w;
  bad[sz(3 * in + 5)] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW_WITH(SparseLinear::pack(bad.data(), out, in, nullptr, o), InvalidArgument,
                    "weight[3][5]");
  bad = w;
  bad[sz(7 * in + 11)] = -std::numeric_limits<float>::infinity();
  EXPECT_THROW_WITH(SparseLinear::pack(bad.data(), out, in, nullptr, o), InvalidArgument,
                    "weight[7][11]");
  auto bias = test::random_floats(sz(out), 191);
  bias[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), out, in, bias.data(), o), InvalidArgument,
                    "bias[2]");
}

TEST(SparseLinearErrors, PatternTheWeightDoesNotSatisfy) {
  const int64_t out = 8, in = 16;
  const auto w = test::random_floats(sz(out * in), 200);  // dense: not 2:4 anywhere
  EXPECT_THROW_WITH(
      SparseLinear::pack(w.data(), out, in, nullptr, options(DType::int8, Pattern::n_of_m(2, 4))),
      InvalidArgument, "row 0");
  // Only row 5 breaks 2:4.
  auto almost = sparse::prune_n_m(w, out, in, 2, 4);
  almost[sz(5 * in + 8)] = almost[sz(5 * in + 9)] = almost[sz(5 * in + 10)] = 1.0f;
  EXPECT_THROW_WITH(SparseLinear::pack(almost.data(), out, in, nullptr,
                                       options(DType::int8, Pattern::n_of_m(2, 4))),
                    InvalidArgument, "row 5");
}

TEST(SparseLinearErrors, UnsupportedRequests) {
  const int64_t out = 8, in = 16;
  const auto w = pruned_weight(out, in, 0.5, 210);
  const auto w24 = sparse::prune_n_m(test::random_floats(sz(out * in), 211), out, in, 2, 4);
  ASSERT_TRUE(sparse::fits_n_m(w24, out, in, 2, 4));
  const auto w14 = sparse::prune_n_m(test::random_floats(sz(out * in), 212), out, in, 1, 4);
  EXPECT_THROW_WITH(
      SparseLinear::pack(w14.data(), out, in, nullptr, options(DType::f32, Pattern::n_of_m(1, 4))),
      NotSupported, "1:4");
}

TEST(SparseLinearErrors, ForwardRejectsInvalidArguments) {
  const int64_t out = 12, in = 20, tokens = 5;
  const auto w = pruned_weight(out, in, 0.5, 220);
  const auto x = input(tokens, in, 221);
  std::vector<float> y(sz(tokens * out));
  for (DType dtype : {DType::int8, DType::f32, DType::bf16})
    for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()}) {
      SCOPED_TRACE(testing::Message() << to_string(dtype) << " " << pattern.to_string());
      const auto layer = SparseLinear::pack(w.data(), out, in, nullptr, options(dtype, pattern));
      EXPECT_THROW_WITH(layer.forward(nullptr, tokens, y.data()), InvalidArgument,
                        "must not be null");
      EXPECT_THROW_WITH(layer.forward(x.data(), tokens, nullptr), InvalidArgument,
                        "must not be null");
      EXPECT_THROW_WITH(layer.forward(x.data(), 0, y.data()), InvalidArgument,
                        "tokens must be positive");
      EXPECT_THROW_WITH(layer.forward(x.data(), -3, y.data()), InvalidArgument,
                        "tokens must be positive");
    }
}

TEST(SparseLinearErrors, QuantizedInputMisuse) {
  const int64_t out = 12, tokens = 5;
  const auto w96 = pruned_weight(out, 96, 0.5, 230);
  const auto w33 = pruned_weight(out, 33, 0.5, 231);
  const auto x33 = input(tokens, 33, 232);
  const auto x96 = input(tokens, 96, 233);
  std::vector<float> y(sz(tokens * out));
  std::vector<int8_t> y8(sz(tokens * out));
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()}) {
    SCOPED_TRACE(pattern.to_string());
    const auto layer96 =
        SparseLinear::pack(w96.data(), out, 96, nullptr, options(DType::int8, pattern));
    const auto layer33 =
        SparseLinear::pack(w33.data(), out, 33, nullptr, options(DType::int8, pattern));
    QuantizedInput q33;
    layer33.quantize_input(x33.data(), tokens, q33);
    EXPECT_THROW_WITH(layer96.forward(q33, y.data()), InvalidArgument,
                      "not made by this layer's quantize_input");
    EXPECT_THROW_WITH(layer96.forward(q33, y8.data(), 0.1f), InvalidArgument,
                      "not made by this layer's quantize_input");
    QuantizedInput never_filled;
    EXPECT_THROW_WITH(layer96.forward(never_filled, y.data()), InvalidArgument, "QuantizedInput");

    QuantizedInput q96;
    layer96.quantize_input(x96.data(), tokens, q96);
    EXPECT_THROW_WITH(layer96.forward(q96, static_cast<float*>(nullptr)), InvalidArgument,
                      "y must not be null");
    EXPECT_THROW_WITH(layer96.quantize_input(nullptr, tokens, q96), InvalidArgument,
                      "x must not be null");
    EXPECT_THROW_WITH(layer96.quantize_input(x96.data(), 0, q96), InvalidArgument,
                      "tokens must be positive");
    for (float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                      std::numeric_limits<float>::infinity()}) {
      SCOPED_TRACE(testing::Message() << "y_scale=" << bad);
      EXPECT_THROW_WITH(layer96.forward(q96, y8.data(), bad), InvalidArgument, "y_scale");
    }
  }
  // A 4x1 layer's QuantizedInput in a dense layer of the same in_features, and vice versa.
  const auto block96 =
      SparseLinear::pack(w96.data(), out, 96, nullptr, options(DType::int8, Pattern::blocks(4, 1)));
  const auto dense96 =
      SparseLinear::pack(w96.data(), out, 96, nullptr, options(DType::int8, Pattern::dense()));
  QuantizedInput qb, qd;
  block96.quantize_input(x96.data(), tokens, qb);
  dense96.quantize_input(x96.data(), tokens, qd);
  if (dense_int8_on_onednn()) {
    EXPECT_THROW_WITH(dense96.forward(qb, y.data()), InvalidArgument, "QuantizedInput");
    EXPECT_THROW_WITH(block96.forward(qd, y.data()), InvalidArgument, "QuantizedInput");
  } else {
    // Both layers run sparq's kernel here, so their inputs share one layout and are
    // interchangeable: the same quantized x gives the same y.
    std::vector<float> y2(y.size());
    dense96.forward(qb, y.data());
    dense96.forward(qd, y2.data());
    EXPECT_EQ(y, y2);
  }
}

TEST(SparseLinearErrors, QuantizedInputOnAnF32LayerThrows) {
  const auto w = pruned_weight(8, 16, 0.5, 250);
  const auto x = input(3, 16, 251);
  const auto int8_layer =
      SparseLinear::pack(w.data(), 8, 16, nullptr, options(DType::int8, Pattern::dense()));
  const auto f32_layer =
      SparseLinear::pack(w.data(), 8, 16, nullptr, options(DType::f32, Pattern::dense()));
  QuantizedInput q;
  int8_layer.quantize_input(x.data(), 3, q);
  std::vector<float> y(3 * 8);
  EXPECT_THROW_WITH(f32_layer.forward(q, y.data()), InvalidArgument, "int8");
}

TEST(SparseLinearErrors, TinyOutputScaleThrows) {
  // 1 / 1e-39 overflows to infinity: the requantization would turn zeros into 127.
  const auto w = pruned_weight(8, 16, 0.5, 252);
  const auto x = input(3, 16, 253);
  const auto layer =
      SparseLinear::pack(w.data(), 8, 16, nullptr, options(DType::int8, Pattern::blocks(4, 1)));
  QuantizedInput q;
  layer.quantize_input(x.data(), 3, q);
  std::vector<int8_t> y(3 * 8);
  EXPECT_THROW_WITH(layer.forward(q, y.data(), 1e-39f), InvalidArgument, "y_scale");
}

TEST(SparseLinearErrors, InFeaturesBeyondInt32AccumulationThrow) {
  const int64_t in = 131073;  // 127 * 127 * in would pass 2^31
  const std::vector<float> w(static_cast<size_t>(in), 1.0f);
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 1, in, nullptr, options(DType::int8, {})),
                    InvalidArgument, "int32 accumulation");
}

TEST(SparseLinearErrors, NonFiniteInputThrows) {
  const auto w = pruned_weight(8, 40, 0.5, 254);
  for (const Pattern& pattern : {Pattern::blocks(4, 1), Pattern::dense()})
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()})
      for (int64_t at : {0, 7, 8, 39, 2 * 40 + 17}) {
        SCOPED_TRACE(testing::Message() << pattern.to_string() << " value=" << bad << " at=" << at);
        auto x = input(4, 40, 255);
        x[static_cast<size_t>(at)] = bad;
        const auto layer =
            SparseLinear::pack(w.data(), 8, 40, nullptr, options(DType::int8, pattern));
        std::vector<float> y(4 * 8);
        EXPECT_THROW_WITH(layer.forward(x.data(), 4, y.data()), InvalidArgument, "not finite");
      }
}

TEST(SparseLinearErrors, MovedFromObjectsThrow) {
  const auto w = pruned_weight(8, 16, 0.5, 256);
  auto layer = SparseLinear::pack(w.data(), 8, 16, nullptr, options(DType::int8, {}));
  const SparseLinear moved = std::move(layer);
  EXPECT_EQ(moved.out_features(), 8);
  EXPECT_THROW_WITH((void)layer.info(), InvalidArgument,
                    "moved from");  // NOLINT(bugprone-use-after-move)
  QuantizedInput q;
  QuantizedInput q2 = std::move(q);
  std::vector<float> y(8);
  EXPECT_THROW_WITH(moved.forward(q, y.data()), InvalidArgument, "moved from");
}

TEST(SparseLinearErrors, QuantizeInputOnF32LayerThrows) {
  const auto w = pruned_weight(8, 8, 0.5, 240);
  const auto x = input(2, 8, 241);
  const auto layer =
      SparseLinear::pack(w.data(), 8, 8, nullptr, options(DType::f32, Pattern::dense()));
  QuantizedInput q;
  EXPECT_THROW_WITH(layer.quantize_input(x.data(), 2, q), InvalidArgument, "int8");
}

// ------------------------------------------------------------------------------------------------
// Value types

TEST(Pattern, ParsesTheDocumentedForms) {
  const Pattern b = Pattern::parse("4x1");
  EXPECT_EQ(b.kind, Pattern::Kind::block);
  EXPECT_EQ(b.block, (BlockShape{4, 1}));
  EXPECT_EQ(b.to_string(), "4x1");
  const Pattern nm = Pattern::parse("2:4");
  EXPECT_EQ(nm.kind, Pattern::Kind::n_m);
  EXPECT_EQ(nm.n, 2);
  EXPECT_EQ(nm.m, 4);
  EXPECT_EQ(nm.to_string(), "2:4");
  EXPECT_EQ(Pattern::parse("auto").kind, Pattern::Kind::automatic);
  EXPECT_EQ(Pattern::parse("dense").kind, Pattern::Kind::dense);
  EXPECT_EQ(Pattern::parse("16x1").block, (BlockShape{16, 1}));
}

TEST(Pattern, RejectsMalformedText) {
  for (const char* text : {"4y1", "0x4", "3:2", "", "x1", "4x", "-4x1", "4x1 ", "automatic"}) {
    SCOPED_TRACE(text);
    EXPECT_THROW_WITH(Pattern::parse(text), InvalidArgument, "pattern '" + std::string(text));
  }
}

TEST(DType, ParsesAndRejects) {
  EXPECT_EQ(parse_dtype("f32"), DType::f32);
  EXPECT_EQ(parse_dtype("bf16"), DType::bf16);
  EXPECT_EQ(parse_dtype("int8"), DType::int8);
  EXPECT_THROW_WITH(parse_dtype("int4"), InvalidArgument, "int4");
  EXPECT_STREQ(to_string(DType::int8), "int8");
  EXPECT_STREQ(to_string(Activation::gelu_tanh), "gelu_tanh");
}

// The int8 level cpu_isa_name() reports is the one sparq's own kernels run on: an int8 4x1
// layer's kernel (e.g. "jit:int8-4x1:avx2") and info().isa name it, and its output is the
// reference's.
TEST(CpuIsa, NameIsTheLevelTheKernelsRunOn) {
  const int64_t out = 64, in = 96, tokens = 20;
  const auto w = pruned_weight(out, in, 0.9, 860);
  const auto x = input(tokens, in, 861);
  const auto layer =
      SparseLinear::pack(w.data(), out, in, nullptr, options(DType::int8, Pattern::blocks(4, 1)));
  const LinearInfo info = layer.info();
  ASSERT_TRUE(is_block_kernel(info.kernel)) << info.kernel;
  const std::string isa = cpu_isa_name();
  // "avx2", or "int8 avx2, float avx512" where the families differ.
  const std::string int8_level =
      isa.rfind("int8 ", 0) == 0 ? isa.substr(5, isa.find(',') - 5) : isa;
  EXPECT_EQ(info.kernel.substr(info.kernel.rfind(':') + 1), int8_level) << info.kernel;
  EXPECT_EQ(info.isa, int8_level);
  test::expect_close(run_forward(layer, x, tokens, nullptr),
                     reference_int8(w, out, in, nullptr, x, tokens, Activation::none, nullptr),
                     2e-5, "y");
}

}  // namespace
}  // namespace sparq

namespace sparq {
namespace {

// One packed layer, several caller threads at once: every result equals the single-threaded one.
TEST(SparseLinearThreads, ConcurrentForwardOnOneLayer) {
  const int64_t out = 70, in = 96;
  const auto w =
      sparse::prune_blocks(test::random_floats(sz(out * in), 400), out, in, BlockShape{16, 1}, 0.8);
  for (const auto& [dtype, pattern] :
       {std::pair{DType::int8, Pattern::blocks(4, 1)}, std::pair{DType::int8, Pattern::dense()},
        std::pair{DType::f32, Pattern::dense()}, std::pair{DType::f32, Pattern::blocks(4, 1)},
        std::pair{DType::bf16, Pattern::blocks(4, 1)},
        std::pair{DType::int8, Pattern::blocks(16, 1)}}) {
    SCOPED_TRACE(testing::Message() << to_string(dtype) << " " << pattern.to_string());
    for (int64_t tokens : {33, 2}) {
      const auto x = input(tokens, in, 401);
      const auto layer =
          SparseLinear::pack(w.data(), out, in, nullptr, options(dtype, pattern, {}, 2));
      std::vector<float> want(static_cast<size_t>(tokens * out));
      layer.forward(x.data(), tokens, want.data());
      std::atomic<int> mismatches{0};
      std::vector<std::thread> callers;
      for (int c = 0; c < 4; ++c)
        callers.emplace_back([&] {
          std::vector<float> y(want.size());
          for (int rep = 0; rep < 25; ++rep) {
            layer.forward(x.data(), tokens, y.data());
            if (y != want) ++mismatches;
          }
        });
      for (auto& t : callers) t.join();
      EXPECT_EQ(mismatches.load(), 0);
    }
  }
}

// LinearOptions::pool: layers of different pools run on different arenas (so independent model
// instances do not queue on one), with results equal to pool 0's, also side by side.
TEST(SparseLinearThreads, PoolsAreSeparateArenasWithEqualResults) {
  EXPECT_NE(&arena_for(2, 0), &arena_for(2, 1));
  EXPECT_EQ(&arena_for(2, 1), &arena_for(2, 1));
  const int64_t out = 96, in = 128, tokens = 40;
  const auto w =
      sparse::prune_blocks(test::random_floats(sz(out * in), 410), out, in, BlockShape{4, 1}, 0.8);
  const auto x = input(tokens, in, 411);
  for (DType dtype : {DType::int8, DType::f32}) {
    SCOPED_TRACE(to_string(dtype));
    auto o = options(dtype, Pattern::blocks(4, 1), Activation::none, 2);
    const auto base = SparseLinear::pack(w.data(), out, in, nullptr, o);
    std::vector<float> want(sz(tokens * out));
    base.forward(x.data(), tokens, want.data());
    std::vector<SparseLinear> pooled;
    for (int pool : {1, 2}) {
      o.pool = pool;
      pooled.push_back(SparseLinear::pack(w.data(), out, in, nullptr, o));
    }
    std::atomic<int> mismatches{0};
    std::vector<std::thread> callers;
    for (const SparseLinear& layer : pooled)
      callers.emplace_back([&] {
        std::vector<float> y(want.size());
        for (int rep = 0; rep < 10; ++rep) {
          layer.forward(x.data(), tokens, y.data());
          if (y != want) ++mismatches;
        }
      });
    for (auto& t : callers) t.join();
    EXPECT_EQ(mismatches.load(), 0);
  }
}

// Decode steps run the 16x1 decode kernel for every int8 layer on sparq's kernels, 4x1-sparse
// and dense ones included (it beats the 4x1 tile kernel at <= 4 tokens even where few 16x1
// blocks are zero), and give what the reference gives.
TEST(SparseLinearDecode, FourByOneAndDenseWeightsDecodeOnTheDecodeKernel) {
  const int64_t out = 64, in = 64;
  const auto w = pruned_weight(out, in, 0.6, 850);  // 4x1 blocks: few whole 16x1 blocks
  const auto x = test::random_floats(sz(3 * in), 851);
  for (Pattern p : {Pattern::automatic(), Pattern::blocks(4, 1), Pattern::dense()}) {
    const auto layer = SparseLinear::pack(w.data(), out, in, nullptr, options(DType::int8, p));
    if (layer.info().kernel.rfind("onednn", 0) == 0) continue;  // VNNI: oneDNN runs dense int8
    EXPECT_NE(layer.info().decode_kernel.find("16x1-decode"), std::string::npos)
        << layer.info().reason;
    std::vector<float> y(sz(3 * out));
    layer.forward(x.data(), 3, y.data());
    test::expect_close(
        y, reference_for(DType::int8, w, out, in, nullptr, x, 3, Activation::none, nullptr), 2e-5,
        "decode");
  }
}

}  // namespace
}  // namespace sparq
