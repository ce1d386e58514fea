#include "sparse/prune.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "sparse/checks.hpp"

namespace sparq::sparse {
namespace {

void require_sparsity(double sparsity) {
  require(sparsity >= 0.0 && sparsity <= 1.0,
          "sparsity must be in [0, 1], got " + std::to_string(sparsity));
}

// Indices of the `count` smallest scores, ties broken by lower index first.
std::vector<int64_t> smallest(const std::vector<double>& score, int64_t count) {
  std::vector<int64_t> order(score.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  auto less = [&](int64_t a, int64_t b) {
    return score[a] < score[b] || (score[a] == score[b] && a < b);
  };
  count = std::clamp<int64_t>(count, 0, static_cast<int64_t>(order.size()));
  std::nth_element(order.begin(), order.begin() + count, order.end(), less);
  order.resize(count);
  return order;
}

}  // namespace

std::vector<float> prune_unstructured(std::span<const float> w, int64_t rows, int64_t cols,
                                      double sparsity) {
  return prune_blocks(w, rows, cols, BlockShape{1, 1}, sparsity);
}

std::vector<float> prune_blocks(std::span<const float> w, int64_t rows, int64_t cols,
                                BlockShape block, double sparsity) {
  require_matrix(w, rows, cols, "prune_blocks: weight");
  require_block(block, "prune_blocks");
  require_sparsity(sparsity);
  const int64_t block_rows = ceil_div(rows, block.rows);
  const int64_t block_cols = ceil_div(cols, block.cols);
  std::vector<double> score(static_cast<size_t>(block_rows * block_cols), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      score[(r / block.rows) * block_cols + c / block.cols] += std::fabs(w[r * cols + c]);
  const auto count = std::llround(sparsity * static_cast<double>(score.size()));
  std::vector<float> pruned(w.begin(), w.end());
  for (int64_t b : smallest(score, count)) {
    const int64_t r0 = (b / block_cols) * block.rows, c0 = (b % block_cols) * block.cols;
    for (int64_t r = r0; r < std::min(rows, r0 + block.rows); ++r)
      for (int64_t c = c0; c < std::min(cols, c0 + block.cols); ++c) pruned[r * cols + c] = 0.0f;
  }
  return pruned;
}

std::vector<float> prune_n_m(std::span<const float> w, int64_t rows, int64_t cols, int n, int m) {
  require_matrix(w, rows, cols, "prune_n_m: weight");
  require(n > 0 && m > 0 && n <= m,
          "prune_n_m: need 0 < n <= m, got " + std::to_string(n) + ":" + std::to_string(m));
  std::vector<float> pruned(w.begin(), w.end());
  std::vector<int64_t> order;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += m) {
      const int64_t width = std::min<int64_t>(m, cols - c0);
      float* group = &pruned[r * cols + c0];
      order.resize(width);
      std::iota(order.begin(), order.end(), int64_t{0});
      // Largest magnitude first; ties keep the lower column. An insertion sort: groups are a
      // few columns, and std::stable_sort's buffer allocation per group dominated pruning a
      // billion-weight model.
      for (int64_t i = 1; i < width; ++i) {
        const int64_t v = order[i];
        int64_t j = i;
        for (; j > 0 && std::fabs(group[order[j - 1]]) < std::fabs(group[v]); --j)
          order[j] = order[j - 1];
        order[j] = v;
      }
      for (int64_t i = n; i < width; ++i) group[order[i]] = 0.0f;
    }
  }
  return pruned;
}

std::vector<float> prune(std::span<const float> w, int64_t rows, int64_t cols,
                         const Pattern& pattern, double sparsity) {
  switch (pattern.kind) {
    case Pattern::Kind::block:
      return prune_blocks(w, rows, cols, pattern.block, sparsity);
    case Pattern::Kind::n_m:
      return prune_n_m(w, rows, cols, pattern.n, pattern.m);
    case Pattern::Kind::dense:
    case Pattern::Kind::automatic:
      break;
  }
  return prune_unstructured(w, rows, cols, sparsity);
}

}  // namespace sparq::sparse
