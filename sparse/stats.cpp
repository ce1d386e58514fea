#include "sparse/stats.hpp"

#include <algorithm>

#include "sparse/checks.hpp"

namespace sparq::sparse {
namespace {

// Per-block count of non-zeros, blocks in row-major block order.
std::vector<int64_t> block_nonzeros(std::span<const float> w, int64_t rows, int64_t cols,
                                    BlockShape block, const char* what) {
  require_matrix(w, rows, cols, what);
  require_block(block, what);
  const int64_t block_cols = ceil_div(cols, block.cols);
  std::vector<int64_t> count(static_cast<size_t>(ceil_div(rows, block.rows) * block_cols), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (w[r * cols + c] != 0.0f) ++count[(r / block.rows) * block_cols + c / block.cols];
  return count;
}

}  // namespace

double sparsity(std::span<const float> w) {
  if (w.empty()) return 0.0;
  const auto zeros = std::count(w.begin(), w.end(), 0.0f);
  return static_cast<double>(zeros) / static_cast<double>(w.size());
}

double block_sparsity(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block) {
  const auto count = block_nonzeros(w, rows, cols, block, "block_sparsity");
  const auto empty = std::count(count.begin(), count.end(), int64_t{0});
  return static_cast<double>(empty) / static_cast<double>(count.size());
}

bool fits_blocks(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block) {
  const auto count = block_nonzeros(w, rows, cols, block, "fits_blocks");
  const int64_t block_cols = ceil_div(cols, block.cols);
  for (size_t b = 0; b < count.size(); ++b) {
    if (count[b] == 0) continue;
    const int64_t r0 = static_cast<int64_t>(b) / block_cols * block.rows;
    const int64_t c0 = static_cast<int64_t>(b) % block_cols * block.cols;
    const int64_t size = (std::min<int64_t>(rows, r0 + block.rows) - r0) *
                         (std::min<int64_t>(cols, c0 + block.cols) - c0);
    if (count[b] != size) return false;
  }
  return true;
}

std::string NmViolation::describe(int n, int m) const {
  return "row " + std::to_string(row) + ", columns " + std::to_string(first_col) + ".." +
         std::to_string(last_col) + " hold " + std::to_string(nonzeros) + " non-zeros where " +
         std::to_string(n) + ":" + std::to_string(m) + " allows at most " + std::to_string(n);
}

std::optional<NmViolation> first_n_m_violation(std::span<const float> w, int64_t rows, int64_t cols,
                                               int n, int m) {
  require_matrix(w, rows, cols, "n:m check");
  require(n > 0 && m > 0 && n <= m, "n:m check: need 0 < n <= m");
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += m) {
      int count = 0;
      for (int64_t c = c0; c < std::min<int64_t>(cols, c0 + m); ++c)
        count += w[r * cols + c] != 0.0f;
      if (count > n) return NmViolation{r, c0, std::min<int64_t>(cols, c0 + m) - 1, count};
    }
  }
  return std::nullopt;
}

PatternReport analyze(std::span<const float> w, int64_t rows, int64_t cols) {
  PatternReport report;
  report.sparsity = sparsity(w);
  for (BlockShape b : {BlockShape{4, 1}, BlockShape{1, 4}, BlockShape{16, 1}, BlockShape{4, 4}})
    report.blocks.push_back({b, block_sparsity(w, rows, cols, b), fits_blocks(w, rows, cols, b)});
  report.fits_2_4 = fits_n_m(w, rows, cols, 2, 4);
  return report;
}

}  // namespace sparq::sparse
