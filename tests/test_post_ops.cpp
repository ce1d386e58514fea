// The epilogue's tensor operand joined by multiplication (LinearOptions::operand = multiply, a
// gated unit's silu(x gate^T) * up), through the public API on every kernel family this CPU
// picks: dense, 4x1, 16x1 and 2:4 weights, fp32 / bf16 / int8 layers, decode-sized and
// prefill-sized calls with tails, fp32 / bf16 / int8 outputs. The kernels compute act(x w^T + b)
// exactly as without an operand and then multiply, so the result must equal, bit for bit, the same
// layer's plain output times the operand (the plain output itself is tested against the reference
// kernels elsewhere).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

std::vector<float> weight_for(const Pattern& pattern, int64_t out, int64_t in, uint32_t seed) {
  const auto dense = test::random_floats(sz(out * in), seed);
  if (pattern.kind == Pattern::Kind::dense) return dense;
  return sparse::prune(dense, out, in, pattern, 0.8);
}

LinearOptions options(DType dtype, const Pattern& pattern, Activation act, OperandOp op) {
  LinearOptions o;
  o.dtype = dtype;
  o.pattern = pattern;
  o.activation = act;
  o.operand = op;
  o.threads = 2;
  return o;
}

struct Layers {
  SparseLinear plain, gated;
};

Layers pack_both(const std::vector<float>& w, int64_t out, int64_t in, const float* bias,
                 DType dtype, const Pattern& pattern, Activation act) {
  return {SparseLinear::pack(w.data(), out, in, bias, options(dtype, pattern, act, OperandOp::add)),
          SparseLinear::pack(w.data(), out, in, bias,
                             options(dtype, pattern, act, OperandOp::multiply))};
}

TEST(OperandMultiply, EqualsThePlainOutputTimesTheOperandOnEveryFamily) {
  const int64_t out = 70, in = 136;
  uint32_t seed = 10;
  std::set<std::string> kernels;
  for (DType dtype : {DType::f32, DType::bf16, DType::int8})
    for (const Pattern& pattern :
         {Pattern::dense(), Pattern::blocks(4, 1), Pattern::blocks(16, 1), Pattern::n_of_m(2, 4)})
      for (Activation act : {Activation::silu, Activation::none}) {
        const auto w = weight_for(pattern, out, in, seed++);
        const auto bias = test::random_floats(sz(out), seed++);
        const Layers layers = pack_both(w, out, in, bias.data(), dtype, pattern, act);
        const LinearInfo info = layers.gated.info();
        EXPECT_EQ(info.kernel, layers.plain.info().kernel);
        for (int64_t tokens : {1, 3, 17, 70, 129}) {
          const std::string kernel =
              tokens <= 4 && !info.decode_kernel.empty() ? info.decode_kernel : info.kernel;
          kernels.insert(kernel);
          SCOPED_TRACE(testing::Message()
                       << to_string(dtype) << " " << pattern.to_string() << " " << to_string(act)
                       << " tokens=" << tokens << " on " << kernel);
          const auto x = test::random_floats(sz(tokens * in), seed++, -2.0f, 2.0f);
          const auto up = test::random_floats(sz(tokens * out), seed++, -3.0f, 3.0f);
          const size_t n = sz(tokens * out);

          std::vector<float> y_plain(n), y_gated(n, -1.0f);
          layers.plain.forward(x.data(), tokens, y_plain.data());
          layers.gated.forward(x.data(), tokens, y_gated.data(), up.data());
          for (size_t i = 0; i < n; ++i)
            ASSERT_EQ(y_gated[i], y_plain[i] * up[i]) << "fp32 output, element " << i;

          std::vector<uint16_t> b_gated(n);
          layers.gated.forward_bf16(x.data(), tokens, b_gated.data(), up.data());
          for (size_t i = 0; i < n; ++i)
            ASSERT_EQ(b_gated[i], sparse::to_bf16(y_plain[i] * up[i]))
                << "bf16 output, element " << i;

          if (dtype == DType::int8) {
            QuantizedInput q;
            layers.gated.quantize_input(x.data(), tokens, q);
            const float y_scale = 0.05f;
            std::vector<int8_t> q_gated(n);
            layers.gated.forward(q, q_gated.data(), y_scale, up.data());
            for (size_t i = 0; i < n; ++i)
              ASSERT_EQ(q_gated[i], sparse::requantize(y_plain[i] * up[i], 1.0f / y_scale))
                  << "int8 output, element " << i;
          }
        }
      }
  std::string list;
  for (const auto& k : kernels) list += " " + k;
  std::cout << "kernels run with a multiplied operand:" << list << "\n";
  // At least the portable or AVX2 families on any x86-64, more on AVX-512.
  EXPECT_GE(kernels.size(), 6u) << list;
}

// A multiplied operand against the reference kernels directly (not only against the plain
// layer), with the order of the epilogue: the activation before the product.
TEST(OperandMultiply, MatchesTheReferenceEpilogue) {
  const int64_t out = 40, in = 64, tokens = 37;
  const auto w = weight_for(Pattern::blocks(4, 1), out, in, 3);
  const auto bias = test::random_floats(sz(out), 4);
  const auto x = test::random_floats(sz(tokens * in), 5, -2.0f, 2.0f);
  const auto up = test::random_floats(sz(tokens * out), 6);
  const auto layer = SparseLinear::pack(
      w.data(), out, in, bias.data(),
      options(DType::f32, Pattern::blocks(4, 1), Activation::silu, OperandOp::multiply));
  std::vector<float> got(sz(tokens * out)), want(got.size());
  layer.forward(x.data(), tokens, got.data(), up.data());
  sparse::Epilogue e{bias.data(), Activation::silu, up.data(), OperandOp::multiply};
  sparse::linear_f32(x.data(), tokens, w.data(), out, in, e, want.data());
  test::expect_close(got, want, 2e-5, "silu(x w^T + b) * up");
}

TEST(OperandMultiply, BadOperandOpsAreRefused) {
  const std::vector<float> w(16 * 16, 1.0f);
  LinearOptions o;
  o.dtype = DType::f32;
  o.operand = static_cast<OperandOp>(7);
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 16, 16, nullptr, o), InvalidArgument,
                    "operand op");
  o.operand = OperandOp::multiply;
  o.dtype = DType::bf16;
  o.device = Device::cuda();  // refused for the operand, whether or not a GPU is here
  EXPECT_THROW_WITH(SparseLinear::pack(w.data(), 16, 16, nullptr, o), NotSupported, "CUDA");
  EXPECT_EQ(parse_operand_op("multiply"), OperandOp::multiply);
  EXPECT_STREQ(to_string(OperandOp::add), "add");
  EXPECT_THROW_WITH(parse_operand_op("mul"), InvalidArgument, "expected add or multiply");
}

}  // namespace
}  // namespace sparq
