#include "sparse/blocked_ell.hpp"

#include <algorithm>

#include "sparse/checks.hpp"

namespace sparq::sparse {

double BlockedEll::padding() const {
  int64_t pad = 0;
  for (int32_t c : col_idx) pad += c < 0;
  return col_idx.empty() ? 0.0 : static_cast<double>(pad) / static_cast<double>(col_idx.size());
}

BlockedEll to_blocked_ell(const Bsr& m) {
  require(m.block.rows == m.block.cols, "to_blocked_ell: Blocked-ELL needs square blocks, got " +
                                            std::to_string(m.block.rows) + "x" +
                                            std::to_string(m.block.cols));
  const int64_t b = m.block.rows;
  BlockedEll e;
  e.block = static_cast<int>(b);
  e.logical_rows = m.rows;
  e.logical_cols = m.cols;
  e.rows = ceil_div(m.rows, b) * b;
  e.cols = ceil_div(m.cols, b) * b;
  for (int64_t br = 0; br < m.block_rows(); ++br)
    e.slots = std::max(e.slots, m.row_ptr[br + 1] - m.row_ptr[br]);
  // cuSPARSE needs at least one slot per row; an all-zero matrix keeps one padded slot.
  e.slots = std::max<int64_t>(e.slots, 1);
  const int64_t block_rows = e.rows / b;
  e.col_idx.assign(static_cast<size_t>(block_rows * e.slots), -1);
  e.values.assign(static_cast<size_t>(e.rows * e.ell_cols()), 0.0f);
  for (int64_t br = 0; br < m.block_rows(); ++br)
    for (int64_t s = 0; s < m.row_ptr[br + 1] - m.row_ptr[br]; ++s) {
      const int64_t stored = m.row_ptr[br] + s;
      e.col_idx[static_cast<size_t>(br * e.slots + s)] = m.col_idx[static_cast<size_t>(stored)];
      for (int64_t i = 0; i < b; ++i)
        std::copy_n(m.values.begin() + (stored * b + i) * b, b,
                    e.values.begin() + (br * b + i) * e.ell_cols() + s * b);
    }
  return e;
}

std::vector<float> to_dense(const BlockedEll& m) {
  std::vector<float> w(static_cast<size_t>(m.logical_rows * m.logical_cols), 0.0f);
  const int64_t b = m.block;
  for (int64_t br = 0; br < m.rows / b; ++br)
    for (int64_t s = 0; s < m.slots; ++s) {
      const int32_t bc = m.col_idx[static_cast<size_t>(br * m.slots + s)];
      if (bc < 0) continue;
      for (int64_t i = 0; i < b; ++i)
        for (int64_t j = 0; j < b; ++j) {
          const int64_t r = br * b + i, c = bc * b + j;
          if (r < m.logical_rows && c < m.logical_cols)
            w[static_cast<size_t>(r * m.logical_cols + c)] =
                m.values[static_cast<size_t>((br * b + i) * m.ell_cols() + s * b + j)];
        }
    }
  return w;
}

}  // namespace sparq::sparse
