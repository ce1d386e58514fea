// The post-op list every kernel's epilogue comes from (jit/post_ops.hpp): its order rules, its
// split between a kernel's register part and its store part, the scalar twin against the
// formulas, and EpilogueEmitter::apply on xmm, ymm and zmm lanes against the scalar twin, for the
// lists the kernel keys make and for lists no key makes (dequantize without bias, an activation
// alone), so that the emitter's every path is checked, not only the ones kernels use today.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "jit/epilogue_emitter.hpp"
#include "jit/generator.hpp"
#include "jit/post_ops.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/reference.hpp"

namespace sparq {
namespace {

using jit::Operand;
using jit::PostOp;
using jit::PostOpKind;
using jit::PostOpList;
using jit::TileOutput;

constexpr Activation kActivations[] = {Activation::none, Activation::relu, Activation::gelu_tanh,
                                       Activation::gelu_erf, Activation::silu};

TEST(PostOpList, MakeListsTheOpsInOrder) {
  EXPECT_EQ(PostOpList::make(true, Activation::gelu_tanh, Operand::add, TileOutput::s8).name(),
            "dequantize,bias,gelu_tanh,add,store:s8");
  EXPECT_EQ(PostOpList::make(false, Activation::none, Operand::none, TileOutput::f32).name(),
            "bias,store:f32");
  const PostOpList swiglu =
      PostOpList::make(false, Activation::silu, Operand::multiply, TileOutput::bf16);
  EXPECT_EQ(swiglu.name(), "bias,silu,mul,store:bf16");
  EXPECT_EQ(swiglu.activation(), Activation::silu);
  EXPECT_EQ(swiglu.operand(), Operand::multiply);
  EXPECT_EQ(swiglu.output(), TileOutput::bf16);
  EXPECT_FALSE(swiglu.has(PostOpKind::dequantize));
}

TEST(PostOpList, RefusesOpsOutOfOrderOrTwice) {
  PostOpList list;
  list.append({PostOpKind::bias});
  EXPECT_THROW(list.append({PostOpKind::dequantize}), InvalidArgument);
  EXPECT_THROW(list.append({PostOpKind::bias}), InvalidArgument);
  list.append({PostOpKind::store});
  EXPECT_THROW(list.append({PostOpKind::activation, Activation::relu}), InvalidArgument);
  PostOpList empty;
  EXPECT_THROW(empty.append({PostOpKind::activation, Activation::none}), InvalidArgument);
  EXPECT_THROW(empty.append({PostOpKind::binary, Activation::none, Operand::none}),
               InvalidArgument);
  try {
    list.append({PostOpKind::binary, Activation::none, Operand::add});
    FAIL() << "a binary op after the store was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("binary after store"), std::string::npos) << e.what();
  }
}

TEST(PostOpList, SplitsWhereKernelsSplitTheirEpilogue) {
  const PostOpList list =
      PostOpList::make(true, Activation::gelu_erf, Operand::multiply, TileOutput::s8);
  EXPECT_EQ(list.before(PostOpKind::binary).name(), "dequantize,bias,gelu_erf");
  EXPECT_EQ(list.from(PostOpKind::binary).name(), "mul,store:s8");
  EXPECT_EQ(list.before(PostOpKind::activation).name(), "dequantize,bias");
  EXPECT_EQ(list.before(PostOpKind::binary).from(PostOpKind::activation).name(), "gelu_erf");
  // Without the op the split is at its place in the order.
  const PostOpList plain =
      PostOpList::make(false, Activation::none, Operand::none, TileOutput::f32);
  EXPECT_EQ(plain.before(PostOpKind::binary).name(), "bias");
  EXPECT_EQ(plain.from(PostOpKind::binary).name(), "store:f32");
  EXPECT_TRUE(plain.before(PostOpKind::binary).from(PostOpKind::activation).ops().empty());
}

TEST(PostOpList, ScalarTwinFollowsTheFormulas) {
  const jit::PostOpInputs in{7, 0.25f, 0.125f, 1.5f, -2.0f};
  for (Activation act : kActivations)
    for (Operand op : {Operand::none, Operand::add, Operand::multiply}) {
      const PostOpList list = PostOpList::make(true, act, op, TileOutput::f32);
      float want = std::fma(static_cast<float>(1000 - 7) * 0.25f, 0.125f, 1.5f);
      want = sparse::activate(want, act);
      want = jit::combine(op, want, -2.0f);
      EXPECT_EQ(jit::apply_post_ops(list, int32_t{1000}, in), want) << list.name();
      const PostOpList f = PostOpList::make(false, act, op, TileOutput::f32);
      EXPECT_EQ(jit::apply_post_ops(f, 3.0f, in),
                jit::combine(op, sparse::activate(3.0f + 1.5f, act), -2.0f))
          << f.name();
    }
  // Dequantize without bias: two multiplies.
  PostOpList no_bias;
  no_bias.append({PostOpKind::dequantize}).append({PostOpKind::store});
  EXPECT_EQ(jit::apply_post_ops(no_bias, int32_t{1000}, in), (993.0f * 0.25f) * 0.125f);
  // The sum's type must match the list.
  EXPECT_THROW(jit::apply_post_ops(no_bias, 1.0f, in), InvalidArgument);
  EXPECT_THROW(
      jit::apply_post_ops(PostOpList::make(false, Activation::none, Operand::none, TileOutput::f32),
                          int32_t{1}, in),
      InvalidArgument);
}

TEST(PostOpList, StoreConvertsAsTheReferenceDoes) {
  int8_t q = 0;
  jit::store_post_op(TileOutput::s8, 1000.0f, &q, 1.0f);
  EXPECT_EQ(q, 127);
  jit::store_post_op(TileOutput::s8, -2.5f, &q, 1.0f);
  EXPECT_EQ(q, -2);  // half to even
  uint16_t b = 0;
  jit::store_post_op(TileOutput::bf16, 1.00390625f, &b, 0.0f);
  EXPECT_EQ(b, sparse::to_bf16(1.00390625f));
  float f = 0.0f;
  jit::store_post_op(TileOutput::f32, -3.25f, &f, 0.0f);
  EXPECT_EQ(f, -3.25f);
}

// --- EpilogueEmitter::apply against the scalar twin ----------------------------------------

struct ApplyArgs {
  const void* sum;  // 16 int32 or fp32
  const float* x_scale;
  const float* w_scale;
  const int32_t* compensation;
  const float* bias;
  const float* operand;
  void* y;
  float inv_y_scale;
};

// One vector of sums through `list`: x_scale and the operand from memory, w_scale and the
// compensation in registers, the bias from memory (so that dequantize loads it into scratch).
template <typename Vmm>
class ApplyGenerator : public jit::Generator {
 public:
  ApplyGenerator(const PostOpList& list, jit::Isa isa) : epilogue_(*this) {
    using namespace Xbyak;
    const Vmm v(0), t0(1), t1(2), t2(3), ws(4), comp(5), inv(6);
#define ARG(field) ptr[rdi + offsetof(ApplyArgs, field)]
    mov(rax, ARG(sum));
    vmovups(v, ptr[rax]);
    mov(rcx, ARG(x_scale));
    mov(rdx, ARG(w_scale));
    vmovups(ws, ptr[rdx]);
    mov(rsi, ARG(compensation));
    vmovups(comp, ptr[rsi]);
    mov(r8, ARG(bias));
    mov(r9, ARG(operand));
    mov(r10, ARG(y));
    vbroadcastss(inv, ARG(inv_y_scale));
#undef ARG
    jit::PostOpSources<Vmm> sources;
    sources.compensation = [&](int) { return comp; };
    sources.x_scale = [&](int) { return ptr[rcx]; };
    sources.w_scale = [&](int) { return ws; };
    sources.bias = [&](int) { return ptr[r8]; };
    sources.operand = [&](int) { return ptr[r9]; };
    sources.destination = [&](int) { return ptr[r10]; };
    sources.inv_y_scale = inv;
    epilogue_.apply(list, typename jit::EpilogueEmitter::Lane<Vmm>{v, t0, t1, t2}, sources);
    vzeroupper();
    ret();
    epilogue_.emit_table();
    finalize(jit::features_of(isa));
  }

 private:
  jit::EpilogueEmitter epilogue_;
};

template <typename Vmm>
constexpr int kLanes = std::is_same_v<Vmm, Xbyak::Zmm>   ? 16
                       : std::is_same_v<Vmm, Xbyak::Ymm> ? 8
                                                         : 4;

// Every list of the given shape family, through the emitter and the scalar twin.
template <typename Vmm>
void check_lists(jit::Isa isa) {
  std::vector<PostOpList> lists;
  for (bool dequantize : {true, false})
    for (Activation act : kActivations)
      for (Operand op : {Operand::none, Operand::add, Operand::multiply})
        for (TileOutput out : {TileOutput::f32, TileOutput::s8, TileOutput::bf16}) {
          if (std::is_same_v<Vmm, Xbyak::Xmm> && out == TileOutput::bf16) continue;
          lists.push_back(PostOpList::make(dequantize, act, op, out));
        }
  // Lists no kernel key makes.
  PostOpList a, b, c;
  a.append({PostOpKind::dequantize}).append({PostOpKind::store, {}, {}, TileOutput::s8});
  b.append({PostOpKind::dequantize}).append({PostOpKind::activation, Activation::silu});
  b.append({PostOpKind::binary, Activation::none, Operand::multiply}).append({PostOpKind::store});
  c.append({PostOpKind::activation, Activation::gelu_erf}).append({PostOpKind::store});
  lists.insert(lists.end(), {a, b, c});

  constexpr int n = kLanes<Vmm>;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> sum_d(-400000, 400000), comp_d(-3000, 3000);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), pos(0.5f, 1.5f);
  uint32_t round = 0;
  for (const PostOpList& list : lists) {
    SCOPED_TRACE(list.name());
    const bool dequantize = list.has(PostOpKind::dequantize);
    std::vector<int32_t> isum(n), comp(n);
    std::vector<float> fsum(n), xs(n), ws(n), bias(n), operand(n);
    for (int i = 0; i < n; ++i) {
      isum[i] = sum_d(rng);
      comp[i] = comp_d(rng);
      fsum[i] = 4.0f * u(rng);
      xs[i] = 1e-3f * pos(rng);
      ws[i] = 1e-2f * pos(rng);
      bias[i] = u(rng);
      operand[i] = 2.0f * u(rng);
    }
    const float inv_y_scale = 30.0f;
    const TileOutput out = list.output();
    const int bytes = jit::output_bytes(out);
    std::vector<uint8_t> got(static_cast<size_t>(n * bytes + 8), 0xcd), want(got);
    ApplyArgs args{
        dequantize ? static_cast<const void*>(isum.data()) : static_cast<const void*>(fsum.data()),
        xs.data(),
        ws.data(),
        comp.data(),
        bias.data(),
        operand.data(),
        got.data(),
        inv_y_scale};
    ApplyGenerator<Vmm> code(list, isa);
    code.run(&args);
    for (int i = 0; i < n; ++i) {
      const jit::PostOpInputs in{comp[i], xs[i], ws[i], bias[i], operand[i]};
      const float v = dequantize ? jit::apply_post_ops(list, isum[i], in)
                                 : jit::apply_post_ops(list, fsum[i], in);
      jit::store_post_op(out, v, want.data() + i * bytes, inv_y_scale);
    }
    for (size_t i = static_cast<size_t>(n * bytes); i < got.size(); ++i)
      ASSERT_EQ(got[i], 0xcd) << "wrote past the vector";
    const bool approximate = list.activation() != Activation::none;
    for (int i = 0; i < n; ++i) {
      if (out == TileOutput::f32) {
        float g, w;
        std::memcpy(&g, got.data() + 4 * i, 4);
        std::memcpy(&w, want.data() + 4 * i, 4);
        if (approximate)
          ASSERT_NEAR(g, w, 2e-6 * (1.0 + std::fabs(w))) << "element " << i;
        else
          ASSERT_EQ(g, w) << "element " << i;
      } else if (out == TileOutput::s8) {
        const int g = static_cast<int8_t>(got[i]), w = static_cast<int8_t>(want[i]);
        ASSERT_LE(std::abs(g - w), approximate ? 1 : 0) << "element " << i;
      } else {
        uint16_t g, w;
        std::memcpy(&g, got.data() + 2 * i, 2);
        std::memcpy(&w, want.data() + 2 * i, 2);
        if (approximate)
          ASSERT_NEAR(sparse::from_bf16(g), sparse::from_bf16(w),
                      1e-2 * (1.0 + std::fabs(sparse::from_bf16(w))))
              << "element " << i;
        else
          ASSERT_EQ(g, w) << "element " << i;
      }
    }
    ++round;
  }
  EXPECT_EQ(round, lists.size());
}

class PostOpEmitter : public ::testing::TestWithParam<jit::Isa> {
 protected:
  void SetUp() override {
    if (const std::string why = test::lane_skip_reason(GetParam()); !why.empty())
      GTEST_SKIP() << why;
    test::announce_lane(std::string("post-op emitter, ") + jit::isa_name(GetParam()),
                        jit::features_of(GetParam()));
  }
};

TEST_P(PostOpEmitter, EveryListMatchesTheScalarTwin) {
  if (GetParam() >= jit::Isa::avx512) {
    check_lists<Xbyak::Zmm>(GetParam());
  } else {
    check_lists<Xbyak::Ymm>(GetParam());
    check_lists<Xbyak::Xmm>(GetParam());
  }
}

TEST_P(PostOpEmitter, XmmLanesRefuseABf16Store) {
  if (GetParam() >= jit::Isa::avx512) GTEST_SKIP() << "xmm lanes are the AVX2 tiles'";
  EXPECT_THROW(
      ApplyGenerator<Xbyak::Xmm>(
          PostOpList::make(false, Activation::none, Operand::none, TileOutput::bf16), GetParam()),
      NotSupported);
}

INSTANTIATE_TEST_SUITE_P(Isas, PostOpEmitter, ::testing::Values(jit::Isa::avx2, jit::Isa::avx512),
                         [](const auto& p) { return std::string(jit::isa_name(p.param)); });

}  // namespace
}  // namespace sparq
