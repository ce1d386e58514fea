// The kernel registry (src/kernel_registry.hpp): one ranked list, a family per name; for each
// token range the first family that applies wins, and a family that wins both ranges packs once.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "jit/cpu_features.hpp"
#include "sparq/linear.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
#include "src/amx_16x1_linear.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/kernel_registry.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

TEST(KernelRegistry, FamiliesHaveUniqueNames) {
  std::set<std::string> names;
  for (const KernelFamily& family : kernel_families()) {
    EXPECT_TRUE(names.insert(family.name).second) << family.name;
    EXPECT_NE(family.applies, nullptr) << family.name;
    EXPECT_NE(family.pack, nullptr) << family.name;
  }
  EXPECT_GE(names.size(), 10u);
}

LayerDescription describe(const std::vector<float>& w, int64_t out, int64_t in, DType dtype,
                          WeightShape shape) {
  LayerDescription d;
  d.out = out;
  d.in = in;
  d.options.dtype = dtype;
  d.options.pattern = shape == WeightShape::two_of_four ? Pattern::n_of_m(2, 4)
                      : shape == WeightShape::blocks    ? Pattern::blocks(16, 1)
                                                        : Pattern::dense();
  d.weight = w.data();
  d.shape = shape;
  d.block_sparsity = sparse::block_sparsity(w, out, in, {4, 1});
  d.sparsity_16x1 = sparse::block_sparsity(w, out, in, {16, 1});
  if (dtype == DType::int8) {
    d.w_s8.resize(w.size());
    d.w_scale.resize(static_cast<size_t>(out));
    sparse::quantize_rows(w.data(), out, in, d.w_s8.data(), d.w_scale.data());
  }
  return d;
}

TEST(KernelRegistry, DecodeFamiliesWinDecodeCallsAndOneFamilyPacksOnce) {
  const int64_t out = 32, in = 64;
  const auto blocks =
      sparse::prune_blocks(test::random_floats(size_t(out * in), 1), out, in, {16, 1}, 0.75);
  const auto dense = test::random_floats(size_t(out * in), 2);
  for (DType dtype : {DType::f32, DType::int8}) {
    SCOPED_TRACE(to_string(dtype));
    // 16x1 blocks: a decode kernel for decode steps, the tile kernel for the rest.
    const KernelChoice sparse_choice =
        choose_kernels(describe(blocks, out, in, dtype, WeightShape::blocks));
    ASSERT_NE(sparse_choice.decode, nullptr);
    EXPECT_NE(sparse_choice.decode->name().find("16x1-decode"), std::string::npos)
        << sparse_choice.decode->name();
    EXPECT_NE(sparse_choice.decode_reason.find("16x1 decode kernel"), std::string::npos);
    EXPECT_EQ(sparse_choice.prefill->name().find("decode"), std::string::npos)
        << sparse_choice.prefill->name();
    // A dense weight where oneDNN runs it: one kernel for every call.
    if (dtype == DType::f32 || onednn_int8_is_exact()) {
      const KernelChoice dense_choice =
          choose_kernels(describe(dense, out, in, dtype, WeightShape::dense));
      EXPECT_EQ(dense_choice.decode, nullptr);
      EXPECT_EQ(dense_choice.prefill->isa(), "onednn") << dense_choice.prefill->name();
    }
  }
}

// Where oneDNN's int8 / bf16 GEMM runs on AMX tiles, longer calls of weights too dense for sparq's
// AVX-512 tile kernels to beat it run on it: 4x1 blocks under auto below the dtype's threshold,
// and 2:4 (unless SPARQ_INT8_2OF4_PREFILL asks otherwise). Elsewhere (and under an explicit block
// pattern) the sparse kernels keep them. On an AMX machine, ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
// runs the other branch.
TEST(KernelRegistry, OneDnnOnAmxRunsTheLongerCallsOfWeightsTooDenseToBeatIt) {
  const int64_t out = 64, in = 256;
  const auto w = test::random_floats(size_t(out * in), 7);
  for (DType dtype : {DType::int8, DType::bf16}) {
    SCOPED_TRACE(to_string(dtype));
    const bool amx = onednn_runs_amx(dtype);
    const double needed =
        dtype == DType::int8 ? kMinBlockSparsityAgainstAmxInt8 : kMinBlockSparsityAgainstAmxBf16;
    for (double sparsity : {needed - 0.25, needed - 0.1, std::min(needed + 0.05, 0.99)}) {
      SCOPED_TRACE(sparsity);
      const auto pruned = sparse::prune_blocks(w, out, in, {4, 1}, sparsity);
      LinearOptions o;
      o.dtype = dtype;
      const auto layer = SparseLinear::pack(pruned.data(), out, in, nullptr, o);
      const LinearInfo info = layer.info();
      const bool dense = amx && sparsity < needed;
      EXPECT_EQ(info.kernel.rfind("onednn:", 0) == 0, dense) << info.kernel << ": " << info.reason;
      EXPECT_EQ(info.reason.find("AMX") != std::string::npos, dense) << info.reason;
      if (dense) {
        // Decode steps keep a sparse kernel of their own, or share the prefill's oneDNN layer
        // (one copy of the weight): never a second oneDNN layer.
        EXPECT_NE(info.decode_kernel.rfind("onednn:", 0), 0u) << info.decode_kernel;
      }
      // An explicit pattern keeps the tile kernel and says what auto would run.
      o.pattern = Pattern::blocks(4, 1);
      const auto requested = SparseLinear::pack(pruned.data(), out, in, nullptr, o);
      EXPECT_NE(requested.info().kernel.find("4x1"), std::string::npos) << requested.info().kernel;
      EXPECT_EQ(requested.info().reason.find("pattern auto runs it") != std::string::npos, dense)
          << requested.info().reason;
    }
    // 2:4: oneDNN's dense GEMM on AMX, else sparq's 2:4 prefill kernel (with AVX-512 VNNI for
    // int8, AVX512_BF16 for bf16).
    LinearOptions o;
    o.dtype = dtype;
    o.pattern = Pattern::n_of_m(2, 4);
    const auto nm = sparse::prune_n_m(w, out, in, 2, 4);
    const LinearInfo info = SparseLinear::pack(nm.data(), out, in, nullptr, o).info();
    if (amx) {
      EXPECT_EQ(info.kernel, std::string("onednn:") + to_string(dtype) + "-dense") << info.reason;
      EXPECT_NE(info.reason.find("AMX"), std::string::npos) << info.reason;
      EXPECT_NE(info.decode_kernel.find("2:4"), std::string::npos) << info.decode_kernel;
    } else {
      EXPECT_EQ(info.reason.find("AMX"), std::string::npos) << info.reason;
    }
  }
}

// Where the CPU has AMX (INT8 / BF16), longer calls of int8 / bf16 weights whose zeros come in
// 16x1 blocks run on the 16x1 AMX tile kernels: when requested as 16x1, and under auto from the
// dtype's threshold of zero 16x1 blocks; 4x1-pruned weights (many more 16x1 blocks holding a
// non-zero) keep the 4x1 kernels; decode steps keep the decode kernels. Elsewhere (or under
// SPARQ_MAX_ISA below amx) nothing runs them.
TEST(KernelRegistry, WeightsIn16x1BlocksRunOnAmxTiles) {
  const int64_t out = 128, in = 512;
  const auto w = test::random_floats(size_t(out * in), 17);
  for (DType dtype : {DType::int8, DType::bf16}) {
    SCOPED_TRACE(to_string(dtype));
    const bool amx =
        dtype == DType::int8 ? Int8Amx16x1Linear::available() : Bf16Amx16x1Linear::available();
    const std::string amx_kernel = std::string("cpp-amx:") + to_string(dtype) + "-16x1";
    const auto kernel_of = [&](const std::vector<float>& weight, Pattern pattern) {
      LinearOptions o;
      o.dtype = dtype;
      o.pattern = pattern;
      return SparseLinear::pack(weight.data(), out, in, nullptr, o).info();
    };
    const auto in_16x1 = sparse::prune_blocks(w, out, in, {16, 1}, 0.9);
    for (Pattern pattern : {Pattern::automatic(), Pattern::blocks(16, 1)}) {
      const LinearInfo info = kernel_of(in_16x1, pattern);
      EXPECT_EQ(info.kernel == amx_kernel, amx) << info.kernel << ": " << info.reason;
      EXPECT_EQ(info.reason.find("AMX") != std::string::npos &&
                    info.reason.find("tiles over") != std::string::npos,
                amx)
          << info.reason;
      EXPECT_NE(info.decode_kernel.find("decode"), std::string::npos) << info.decode_kernel;
    }
    // Too few zero 16x1 blocks for auto; 4x1-pruned weights.
    const auto half = sparse::prune_blocks(w, out, in, {16, 1}, 0.5);
    EXPECT_NE(kernel_of(half, Pattern::automatic()).kernel, amx_kernel);
    const auto in_4x1 = sparse::prune_blocks(w, out, in, {4, 1}, 0.9);
    EXPECT_NE(kernel_of(in_4x1, Pattern::automatic()).kernel, amx_kernel);
    // An explicit 16x1 request below auto's threshold still runs it, saying what auto would do.
    if (amx && onednn_runs_amx(dtype)) {
      const LinearInfo info = kernel_of(half, Pattern::blocks(16, 1));
      EXPECT_EQ(info.kernel, amx_kernel);
      EXPECT_NE(info.reason.find("pattern auto runs it"), std::string::npos) << info.reason;
    }
  }
}

TEST(KernelRegistry, Int8TwoOfFourPrefillFollowsItsSwitchOnAnyCpu) {
  if (jit::best_int8_isa() != jit::Isa::avx512_vnni || !onednn_int8_is_exact())
    GTEST_SKIP() << "the int8 2:4 prefill kernel needs AVX-512 VNNI";
  const int64_t out = 64, in = 256;
  const auto nm = sparse::prune_n_m(test::random_floats(size_t(out * in), 8), out, in, 2, 4);
  LinearOptions o;
  o.dtype = DType::int8;
  o.pattern = Pattern::n_of_m(2, 4);
  for (const char* mode : {"jit", "dense"}) {
    test::ScopedEnv env("SPARQ_INT8_2OF4_PREFILL", mode);
    const LinearInfo info = SparseLinear::pack(nm.data(), out, in, nullptr, o).info();
    EXPECT_EQ(info.kernel,
              std::string(mode) == "jit" ? "jit:int8-2:4:avx512_vnni" : "onednn:int8-dense")
        << info.reason;
  }
}

}  // namespace
}  // namespace sparq
