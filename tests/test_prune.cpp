// Magnitude pruning: exact sparsity, the largest-magnitude entries / blocks / group members kept
// unchanged, structured fits afterwards, the 0 and 1 extremes and argument validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/types.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

std::string shape_name(BlockShape b) {
  return std::to_string(b.rows) + "x" + std::to_string(b.cols);
}

// Blocks in row-major block order; edge blocks partial.
struct BlockGrid {
  int64_t rows, cols;
  BlockShape block;
  int64_t block_rows() const { return (rows + block.rows - 1) / block.rows; }
  int64_t block_cols() const { return (cols + block.cols - 1) / block.cols; }
  int64_t count() const { return block_rows() * block_cols(); }

  template <typename F>
  void for_each_in(int64_t b, F&& f) const {
    const int64_t r0 = b / block_cols() * block.rows, c0 = b % block_cols() * block.cols;
    for (int64_t r = r0; r < std::min(rows, r0 + block.rows); ++r)
      for (int64_t c = c0; c < std::min(cols, c0 + block.cols); ++c) f(r * cols + c);
  }
  double l1(const std::vector<float>& w, int64_t b) const {
    double s = 0;
    for_each_in(b, [&](int64_t i) { s += std::fabs(w[i]); });
    return s;
  }
  bool all_zero(const std::vector<float>& w, int64_t b) const {
    bool zero = true;
    for_each_in(b, [&](int64_t i) { zero = zero && w[i] == 0.0f; });
    return zero;
  }
};

// Checks a prune_blocks result against its input (which must hold no zeros).
void check_block_prune(const std::vector<float>& w, const std::vector<float>& p, int64_t rows,
                       int64_t cols, BlockShape block, double s) {
  SCOPED_TRACE(testing::Message() << rows << "x" << cols << " block " << shape_name(block)
                                  << " sparsity " << s);
  ASSERT_EQ(p.size(), w.size());
  const BlockGrid grid{rows, cols, block};
  int64_t pruned = 0;
  double min_kept = INFINITY, max_pruned = -INFINITY;
  for (int64_t b = 0; b < grid.count(); ++b) {
    if (grid.all_zero(p, b)) {
      ++pruned;
      max_pruned = std::max(max_pruned, grid.l1(w, b));
    } else {
      min_kept = std::min(min_kept, grid.l1(w, b));
      // A kept block is kept whole and unchanged.
      grid.for_each_in(b, [&](int64_t i) { ASSERT_EQ(p[i], w[i]) << "element " << i; });
    }
  }
  EXPECT_EQ(pruned, std::llround(s * static_cast<double>(grid.count())));
  EXPECT_GE(min_kept, max_pruned) << "a pruned block outweighs a kept one";
  EXPECT_TRUE(sparse::fits_blocks(p, rows, cols, block));
}

TEST(PruneBlocks, ExactCountAndLargestBlocksKept) {
  const BlockShape shapes[] = {{4, 1}, {1, 4}, {16, 1}, {4, 4}, {1, 1}, {3, 5}};
  const std::pair<int64_t, int64_t> sizes[] = {{37, 53}, {64, 32}, {5, 3}, {17, 1}, {1, 19}};
  uint32_t seed = 1;
  for (BlockShape block : shapes)
    for (auto [rows, cols] : sizes)
      for (double s : {0.1, 0.5, 0.73, 0.9}) {
        const auto w = test::random_floats(static_cast<size_t>(rows * cols), seed++, 0.01f, 1.0f);
        // Mixed signs: pruning must score by magnitude.
        auto signed_w = w;
        for (size_t i = 0; i < signed_w.size(); i += 3) signed_w[i] = -signed_w[i];
        const auto p = sparse::prune_blocks(signed_w, rows, cols, block, s);
        check_block_prune(signed_w, p, rows, cols, block, s);
      }
}

TEST(PruneBlocks, EdgeBlocksArePrunedLikeOthers) {
  // 37x53 with 16x1 blocks: the bottom row of blocks holds only 5 rows. Make those edge blocks
  // the smallest; half the blocks pruned must then include every edge block.
  const int64_t rows = 37, cols = 53;
  auto w = test::random_floats(static_cast<size_t>(rows * cols), 7, 0.5f, 1.0f);
  for (int64_t r = 32; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = 0.001f;
  const auto p = sparse::prune_blocks(w, rows, cols, {16, 1}, 0.5);
  for (int64_t r = 32; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(p[r * cols + c], 0.0f) << r << "," << c;
  check_block_prune(w, p, rows, cols, {16, 1}, 0.5);
}

TEST(PruneBlocks, TiesStillGiveTheExactCountDeterministically) {
  const int64_t rows = 12, cols = 10;
  const std::vector<float> w(rows * cols, 1.0f);
  const auto p = sparse::prune_blocks(w, rows, cols, {4, 1}, 0.4);
  int64_t zero_blocks = 0;
  const BlockGrid grid{rows, cols, {4, 1}};
  for (int64_t b = 0; b < grid.count(); ++b) zero_blocks += grid.all_zero(p, b);
  EXPECT_EQ(zero_blocks, 12);  // round(0.4 * 30)
  EXPECT_EQ(sparse::sparsity(p), 0.4);
  EXPECT_EQ(p, sparse::prune_blocks(w, rows, cols, {4, 1}, 0.4));
}

TEST(PruneBlocks, ZeroKeepsEverythingOneZeroesEverything) {
  const int64_t rows = 37, cols = 53;
  const auto w = test::random_floats(static_cast<size_t>(rows * cols), 11);
  for (BlockShape block :
       {BlockShape{4, 1}, BlockShape{1, 4}, BlockShape{16, 1}, BlockShape{4, 4}}) {
    SCOPED_TRACE(shape_name(block));
    EXPECT_EQ(sparse::prune_blocks(w, rows, cols, block, 0.0), w);
    EXPECT_EQ(sparse::prune_blocks(w, rows, cols, block, 1.0), std::vector<float>(w.size(), 0.0f));
  }
}

TEST(PruneUnstructured, ExactCountSmallestZeroed) {
  uint32_t seed = 50;
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 53}, {1, 7}, {9, 1}, {16, 16}})
    for (double s : {0.0, 0.05, 0.5, 0.91, 1.0}) {
      SCOPED_TRACE(testing::Message() << rows << "x" << cols << " sparsity " << s);
      auto w = test::random_floats(static_cast<size_t>(rows * cols), seed++, 0.01f, 1.0f);
      for (size_t i = 1; i < w.size(); i += 2) w[i] = -w[i];
      const auto p = sparse::prune_unstructured(w, rows, cols, s);
      ASSERT_EQ(p.size(), w.size());
      int64_t zeros = 0;
      double min_kept = INFINITY, max_pruned = -INFINITY;
      for (size_t i = 0; i < w.size(); ++i) {
        if (p[i] == 0.0f) {
          ++zeros;
          max_pruned = std::max(max_pruned, double(std::fabs(w[i])));
        } else {
          EXPECT_EQ(p[i], w[i]) << "element " << i;
          min_kept = std::min(min_kept, double(std::fabs(w[i])));
        }
      }
      EXPECT_EQ(zeros, std::llround(s * static_cast<double>(rows * cols)));
      EXPECT_GE(min_kept, max_pruned);
    }
}

TEST(PruneNM, KeepsTheNLargestOfEveryGroup) {
  struct Nm {
    int n, m;
  };
  uint32_t seed = 80;
  for (Nm nm : {Nm{2, 4}, Nm{1, 4}, Nm{4, 8}, Nm{3, 3}})
    for (auto [rows, cols] :
         {std::pair<int64_t, int64_t>{7, 30}, {5, 13}, {3, 4}, {2, 1}, {37, 53}}) {
      SCOPED_TRACE(testing::Message() << nm.n << ":" << nm.m << " " << rows << "x" << cols);
      auto w = test::random_floats(static_cast<size_t>(rows * cols), seed++, 0.01f, 1.0f);
      for (size_t i = 0; i < w.size(); i += 2) w[i] = -w[i];
      const auto p = sparse::prune_n_m(w, rows, cols, nm.n, nm.m);
      ASSERT_EQ(p.size(), w.size());
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += nm.m) {
          const int64_t width = std::min<int64_t>(nm.m, cols - c0);
          int kept = 0;
          float min_kept = INFINITY, max_pruned = -INFINITY;
          for (int64_t c = c0; c < c0 + width; ++c) {
            const int64_t i = r * cols + c;
            if (p[i] != 0.0f) {
              ++kept;
              EXPECT_EQ(p[i], w[i]) << r << "," << c;
              min_kept = std::min(min_kept, std::fabs(w[i]));
            } else {
              max_pruned = std::max(max_pruned, std::fabs(w[i]));
            }
          }
          EXPECT_EQ(kept, std::min<int64_t>(nm.n, width)) << "row " << r << " group " << c0;
          EXPECT_GE(min_kept, max_pruned) << "row " << r << " group " << c0;
        }
      EXPECT_TRUE(sparse::fits_n_m(p, rows, cols, nm.n, nm.m));
    }
}

TEST(PruneNM, HandExample) {
  // 2:4 on one row of 6: a full group keeps its 2 largest, the partial group of 2 keeps both.
  const std::vector<float> w = {0.1f, -0.9f, 0.5f, 0.3f, -0.2f, 0.4f};
  EXPECT_EQ(sparse::prune_n_m(w, 1, 6, 2, 4),
            (std::vector<float>{0.0f, -0.9f, 0.5f, 0.0f, -0.2f, 0.4f}));
  EXPECT_EQ(sparse::prune_n_m(w, 1, 6, 1, 4),
            (std::vector<float>{0.0f, -0.9f, 0.0f, 0.0f, 0.0f, 0.4f}));
  EXPECT_EQ(sparse::prune_n_m(w, 2, 3, 1, 2),
            (std::vector<float>{0.0f, -0.9f, 0.5f, 0.3f, 0.0f, 0.4f}));
}

TEST(PrunePattern, DispatchesOnTheKind) {
  const int64_t rows = 37, cols = 53;
  const auto w = test::random_floats(static_cast<size_t>(rows * cols), 99);
  const auto blocks = sparse::prune(w, rows, cols, Pattern::blocks(4, 4), 0.6);
  EXPECT_EQ(blocks, sparse::prune_blocks(w, rows, cols, {4, 4}, 0.6));
  check_block_prune(w, blocks, rows, cols, {4, 4}, 0.6);

  const auto nm = sparse::prune(w, rows, cols, Pattern::n_of_m(2, 4), 0.1);  // sparsity ignored
  EXPECT_EQ(nm, sparse::prune_n_m(w, rows, cols, 2, 4));
  EXPECT_TRUE(sparse::fits_n_m(nm, rows, cols, 2, 4));
  EXPECT_FALSE(sparse::fits_n_m(w, rows, cols, 2, 4));

  for (const Pattern& p : {Pattern::dense(), Pattern::automatic()}) {
    SCOPED_TRACE(p.to_string());
    const auto u = sparse::prune(w, rows, cols, p, 0.3);
    EXPECT_EQ(u, sparse::prune_unstructured(w, rows, cols, 0.3));
    EXPECT_EQ(std::count(u.begin(), u.end(), 0.0f), std::llround(0.3 * rows * cols));
  }
}

TEST(PruneErrors, InvalidArgumentsThrow) {
  const int64_t rows = 8, cols = 8;
  const auto w = test::random_floats(static_cast<size_t>(rows * cols), 5);
  const std::span<const float> short_w(w.data(), w.size() - 1);
  for (double s : {-0.1, 1.5, std::nan("")}) {
    SCOPED_TRACE(s);
    EXPECT_THROW(sparse::prune_unstructured(w, rows, cols, s), InvalidArgument);
    EXPECT_THROW(sparse::prune_blocks(w, rows, cols, {4, 1}, s), InvalidArgument);
    EXPECT_THROW(sparse::prune(w, rows, cols, Pattern::blocks(1, 4), s), InvalidArgument);
    EXPECT_THROW(sparse::prune(w, rows, cols, Pattern::dense(), s), InvalidArgument);
  }
  EXPECT_THROW(sparse::prune_n_m(w, rows, cols, 5, 4), InvalidArgument);  // n > m
  EXPECT_THROW(sparse::prune_n_m(w, rows, cols, 0, 4), InvalidArgument);  // n = 0
  EXPECT_THROW(sparse::prune_n_m(w, rows, cols, 2, 0), InvalidArgument);
  EXPECT_THROW(sparse::prune(w, rows, cols, Pattern::n_of_m(3, 2), 0.5), InvalidArgument);
  // Span size mismatch.
  EXPECT_THROW(sparse::prune_unstructured(short_w, rows, cols, 0.5), InvalidArgument);
  EXPECT_THROW(sparse::prune_blocks(short_w, rows, cols, {4, 4}, 0.5), InvalidArgument);
  EXPECT_THROW(sparse::prune_n_m(short_w, rows, cols, 2, 4), InvalidArgument);
  EXPECT_THROW(sparse::prune_blocks(w, rows, cols + 1, {4, 4}, 0.5), InvalidArgument);
  // Zero or negative sizes.
  const std::vector<float> empty;
  EXPECT_THROW(sparse::prune_unstructured(empty, 0, cols, 0.5), InvalidArgument);
  EXPECT_THROW(sparse::prune_blocks(empty, 0, cols, {4, 1}, 0.5), InvalidArgument);
  EXPECT_THROW(sparse::prune_n_m(empty, 0, cols, 2, 4), InvalidArgument);
  EXPECT_THROW(sparse::prune_n_m(empty, rows, 0, 2, 4), InvalidArgument);
  EXPECT_THROW(sparse::prune_blocks(w, -8, -8, {4, 1}, 0.5), InvalidArgument);
  // Non-positive block shapes.
  EXPECT_THROW(sparse::prune_blocks(w, rows, cols, {0, 1}, 0.5), InvalidArgument);
  EXPECT_THROW(sparse::prune_blocks(w, rows, cols, {4, -1}, 0.5), InvalidArgument);
}

}  // namespace
}  // namespace sparq
