// The kernel registry (src/kernel_registry.hpp): one ranked list, a family per name; for each
// token range the first family that applies wins, and a family that wins both ranges packs once.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "jit/cpu_features.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
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

}  // namespace
}  // namespace sparq
