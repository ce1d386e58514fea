// The post-op list every kernel's epilogue comes from (jit/post_ops.hpp): its order rules, its
// split between a kernel's register part and its store part, the scalar twin against the
// formulas, and EpilogueEmitter::apply on xmm, ymm and zmm lanes against the scalar twin, for the
// lists the kernel keys make and for lists no key makes (dequantize without bias, an activation
// alone), over one to four lanes with their own sources, the sources in registers or memory
// (AVX-512: embedded broadcasts, masked stores), and that apply leaves the sources' registers
// as they were.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
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

template <typename Vmm>
constexpr int kWidth = std::is_same_v<Vmm, Xbyak::Zmm>   ? 16
                       : std::is_same_v<Vmm, Xbyak::Ymm> ? 8
                                                         : 4;

// Where the sources sit: the variants the kernels use (and some they do not yet).
struct Variant {
  int lanes = 1;                     // vectors per apply call, each with its own sources
  bool compensation = true;          // dequantize subtracts a compensation
  bool bias_in_register = false;     // else memory (loaded into t0 when it follows dequantize)
  bool clamps_in_registers = false;  // else the constant table
  bool broadcast_x_scale = false;    // zmm: x_scale as an embedded broadcast (one per lane)
  bool masked = false;               // zmm: store only the elements of a mask
};

struct ApplyArgs {
  const void* sum;       // lanes x width int32 or fp32
  const float* x_scale;  // lanes x width (broadcast_x_scale: one per lane)
  const float* w_scale;  // lanes x width
  const int32_t* compensation;
  const float* bias;
  const float* tensor;
  void* y;        // lanes x width elements of the output type
  uint8_t* kept;  // where the code saves the source registers after apply (64 bytes each)
  float inv_y_scale;
  uint32_t mask;  // masked: the elements stored
};

// One apply call over v.lanes vectors; afterwards the registers that held sources are saved to
// `kept`, in the order of ApplyGenerator::kept_registers(), to check that apply left them alone.
template <typename Vmm>
class ApplyGenerator : public jit::Generator {
 public:
  static constexpr int kRegs = std::is_same_v<Vmm, Xbyak::Zmm> ? 32 : 16;

  ApplyGenerator(const PostOpList& list, const Variant& v, jit::Isa isa) : epilogue_(*this) {
    using namespace Xbyak;
    using Lane = jit::EpilogueEmitter::Lane<Vmm>;
    constexpr int w = kWidth<Vmm>;
    int next = 0;
    auto reg = [&] {
      if (next >= kRegs) throw NotSupported("the variant needs more registers than there are");
      return Vmm(next++);
    };
    std::vector<Lane> lanes;
    for (int l = 0; l < v.lanes; ++l) lanes.push_back({reg(), reg(), reg(), reg()});
    std::vector<Vmm> ws, comp, bias;
    for (int l = 0; l < v.lanes; ++l) {
      ws.push_back(reg());
      if (v.compensation) comp.push_back(reg());
      if (v.bias_in_register) bias.push_back(reg());
    }
    const Vmm inv = reg();
    std::optional<Vmm> qmax, qmin;
    if (v.clamps_in_registers) {
      qmax = reg();
      qmin = reg();
    }
#define ARG(field) ptr[rdi + offsetof(ApplyArgs, field)]
    mov(rax, ARG(sum));
    mov(rcx, ARG(x_scale));
    mov(rdx, ARG(w_scale));
    mov(rsi, ARG(compensation));
    mov(r8, ARG(bias));
    mov(r9, ARG(tensor));
    mov(r10, ARG(y));
    mov(r11, ARG(kept));
    for (int l = 0; l < v.lanes; ++l) {
      vmovups(lanes[l].x, ptr[rax + 4 * w * l]);
      vmovups(ws[l], ptr[rdx + 4 * w * l]);
      if (v.compensation) vmovups(comp[l], ptr[rsi + 4 * w * l]);
      if (v.bias_in_register) vmovups(bias[l], ptr[r8 + 4 * w * l]);
    }
    vbroadcastss(inv, ARG(inv_y_scale));
    if (qmax) {
      vmovups(*qmax, epilogue_.constant(jit::EpilogueEmitter::kQuantMax));
      vmovups(*qmin, epilogue_.constant(jit::EpilogueEmitter::kQuantMin));
    }
    jit::PostOpSources<Vmm> sources;
    if (v.compensation) sources.compensation = [&](int l) { return comp[l]; };
    sources.x_scale = [&](int l) -> jit::PostOpSource<Vmm> {
      if constexpr (std::is_same_v<Vmm, Zmm>)
        if (v.broadcast_x_scale) return ptr_b[rcx + 4 * l];
      return ptr[rcx + 4 * w * l];
    };
    sources.w_scale = [&](int l) { return ws[l]; };
    sources.bias = [&](int l) -> jit::PostOpSource<Vmm> {
      if (v.bias_in_register) return bias[l];
      return ptr[r8 + 4 * w * l];
    };
    sources.tensor = [&](int l) { return ptr[r9 + 4 * w * l]; };
    const int bytes = jit::output_bytes(list.output());
    sources.destination = [&](int l) { return ptr[r10 + bytes * w * l]; };
    sources.inv_y_scale = inv;
    if (qmax) {
      sources.quant_max = *qmax;
      sources.quant_min = *qmin;
    }
    if constexpr (std::is_same_v<Vmm, Zmm>) {
      if (v.masked) {
        kmovw(k2, ARG(mask));
        sources.store_mask = k2;
      }
    }
#undef ARG
    epilogue_.apply(list, std::span<const Lane>(lanes), sources);
    // The sources' registers, saved for the test to compare with what was loaded.
    int slot = 0;
    for (const Vmm& r : kept_registers(ws, comp, bias, inv, qmax, qmin))
      vmovups(ptr[r11 + 64 * slot++], r);
    vzeroupper();
    ret();
    epilogue_.emit_table();
    finalize(jit::features_of(isa));
  }

  static std::vector<Vmm> kept_registers(const std::vector<Vmm>& ws, const std::vector<Vmm>& comp,
                                         const std::vector<Vmm>& bias, const Vmm& inv,
                                         const std::optional<Vmm>& qmax,
                                         const std::optional<Vmm>& qmin) {
    std::vector<Vmm> all = ws;
    all.insert(all.end(), comp.begin(), comp.end());
    all.insert(all.end(), bias.begin(), bias.end());
    all.push_back(inv);
    if (qmax) {
      all.push_back(*qmax);
      all.push_back(*qmin);
    }
    return all;
  }

 private:
  jit::EpilogueEmitter epilogue_;
};

// Every list the keys make plus lists none makes, in every variant that fits the registers,
// through the emitter and the scalar twin.
template <typename Vmm>
void check_lists(jit::Isa isa) {
  constexpr bool zmm = std::is_same_v<Vmm, Xbyak::Zmm>;
  constexpr int w = kWidth<Vmm>;
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

  std::vector<Variant> variants;
  for (int lanes : {1, 2, 4})
    for (bool comp : {true, false})
      for (bool bias_reg : {false, true})
        for (bool clamps : {false, true})
          for (bool bcast : {false, true})
            for (bool masked : {false, true}) {
              if (!zmm && (bcast || masked)) continue;
              variants.push_back({lanes, comp, bias_reg, clamps, bcast, masked});
            }

  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> sum_d(-400000, 400000), comp_d(-3000, 3000);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f), pos(0.5f, 1.5f);
  int generated = 0;
  for (const Variant& v : variants)
    for (const PostOpList& list : lists) {
      SCOPED_TRACE(testing::Message()
                   << list.name() << " lanes=" << v.lanes << " comp=" << v.compensation
                   << " bias_reg=" << v.bias_in_register << " clamps=" << v.clamps_in_registers
                   << " bcast=" << v.broadcast_x_scale << " masked=" << v.masked);
      std::unique_ptr<ApplyGenerator<Vmm>> code;
      try {
        code = std::make_unique<ApplyGenerator<Vmm>>(list, v, isa);
      } catch (const NotSupported&) {
        continue;  // more registers than this width has
      }
      ++generated;
      const bool dequantize = list.has(PostOpKind::dequantize);
      const size_t n = static_cast<size_t>(v.lanes * w);
      std::vector<int32_t> isum(n), comp(n, 0);
      std::vector<float> fsum(n), xs(n), ws(n), bias(n), tensor(n);
      for (size_t i = 0; i < n; ++i) {
        isum[i] = sum_d(rng);
        if (v.compensation) comp[i] = comp_d(rng);
        fsum[i] = 4.0f * u(rng);
        xs[i] = 1e-3f * pos(rng);
        ws[i] = 1e-2f * pos(rng);
        bias[i] = u(rng);
        tensor[i] = 2.0f * u(rng);
      }
      if (v.broadcast_x_scale)  // one scale per lane, read from x_scale[lane]
        for (size_t i = 0; i < n; ++i) xs[i] = xs[(i / w) % static_cast<size_t>(v.lanes)];
      const uint32_t mask = v.masked ? 0xa5c3u : 0xffffu;
      const float inv_y_scale = 30.0f;
      const TileOutput out = list.output();
      const int bytes = jit::output_bytes(out);
      std::vector<uint8_t> got(n * static_cast<size_t>(bytes) + 8, 0xcd), want(got);
      std::vector<uint8_t> kept(64 * 16, 0);
      const ApplyArgs args{dequantize ? static_cast<const void*>(isum.data()) : fsum.data(),
                           xs.data(),
                           ws.data(),
                           comp.data(),
                           bias.data(),
                           tensor.data(),
                           got.data(),
                           kept.data(),
                           inv_y_scale,
                           mask};
      code->run(&args);
      for (size_t i = 0; i < n; ++i) {
        if (!((mask >> (i % w)) & 1u)) continue;  // left as it was (0xcd)
        const jit::PostOpInputs in{comp[i], xs[i], ws[i], bias[i], tensor[i]};
        const float value = dequantize ? jit::apply_post_ops(list, isum[i], in)
                                       : jit::apply_post_ops(list, fsum[i], in);
        jit::store_post_op(out, value, want.data() + i * static_cast<size_t>(bytes), inv_y_scale);
      }
      const bool approximate = list.activation() != Activation::none;
      for (size_t i = 0; i < n; ++i) {
        const uint8_t* g = got.data() + i * static_cast<size_t>(bytes);
        const uint8_t* e = want.data() + i * static_cast<size_t>(bytes);
        if (!((mask >> (i % w)) & 1u) || !approximate) {
          ASSERT_EQ(std::memcmp(g, e, static_cast<size_t>(bytes)), 0) << "element " << i;
          continue;
        }
        if (out == TileOutput::f32) {
          float gf, ef;
          std::memcpy(&gf, g, 4);
          std::memcpy(&ef, e, 4);
          ASSERT_NEAR(gf, ef, 2e-6 * (1.0 + std::fabs(ef))) << "element " << i;
        } else if (out == TileOutput::s8) {
          ASSERT_LE(std::abs(int{static_cast<int8_t>(*g)} - int{static_cast<int8_t>(*e)}), 1)
              << "element " << i;
        } else {
          uint16_t gb, eb;
          std::memcpy(&gb, g, 2);
          std::memcpy(&eb, e, 2);
          const float ef = sparse::from_bf16(eb);
          ASSERT_NEAR(sparse::from_bf16(gb), ef, 1e-2 * (1.0 + std::fabs(ef))) << "element " << i;
        }
      }
      for (size_t i = n * static_cast<size_t>(bytes); i < got.size(); ++i)
        ASSERT_EQ(got[i], 0xcd) << "wrote past the vectors";
      // The source registers, as loaded: w_scale, compensation and bias per lane, then
      // inv_y_scale and the clamps.
      std::vector<std::vector<uint8_t>> loaded;
      auto slice = [&](const void* base, int l) {
        const auto* p = static_cast<const uint8_t*>(base) + 4 * w * l;
        loaded.emplace_back(p, p + 4 * w);
      };
      for (int l = 0; l < v.lanes; ++l) slice(ws.data(), l);
      if (v.compensation)
        for (int l = 0; l < v.lanes; ++l) slice(comp.data(), l);
      if (v.bias_in_register)
        for (int l = 0; l < v.lanes; ++l) slice(bias.data(), l);
      const std::vector<float> inv_v(w, inv_y_scale), qmax_v(w, 127.0f), qmin_v(w, -128.0f);
      slice(inv_v.data(), 0);
      if (v.clamps_in_registers) {
        slice(qmax_v.data(), 0);
        slice(qmin_v.data(), 0);
      }
      for (size_t k = 0; k < loaded.size(); ++k)
        ASSERT_EQ(std::memcmp(kept.data() + 64 * k, loaded[k].data(), loaded[k].size()), 0)
            << "apply changed source register " << k;
    }
  // Every list generated in at least the one-lane variants.
  EXPECT_GE(generated, static_cast<int>(lists.size()));
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
  const PostOpList bf16 =
      PostOpList::make(false, Activation::none, Operand::none, TileOutput::bf16);
  EXPECT_THROW(ApplyGenerator<Xbyak::Xmm>(bf16, Variant{}, GetParam()), NotSupported);
}

INSTANTIATE_TEST_SUITE_P(Isas, PostOpEmitter, ::testing::Values(jit::Isa::avx2, jit::Isa::avx512),
                         [](const auto& p) { return std::string(jit::isa_name(p.param)); });

}  // namespace
}  // namespace sparq
