#include "sparse/bsr.hpp"

#include <algorithm>
#include <limits>

#include "sparse/checks.hpp"

namespace sparq::sparse {

int64_t Bsr::bytes() const {
  return static_cast<int64_t>(row_ptr.size() * sizeof(int64_t) + col_idx.size() * sizeof(int32_t) +
                              values.size() * sizeof(float));
}

Bsr to_bsr(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block) {
  require_matrix(w, rows, cols, "to_bsr: weight");
  require_block(block, "to_bsr");
  require(ceil_div(cols, block.cols) <= std::numeric_limits<int32_t>::max(),
          "to_bsr: too many block columns for 32-bit indices");
  Bsr m{rows, cols, block, {0}, {}, {}};
  const int64_t R = block.rows, C = block.cols;
  for (int64_t br = 0; br < ceil_div(rows, R); ++br) {
    for (int64_t bc = 0; bc < ceil_div(cols, C); ++bc) {
      bool any = false;
      for (int64_t r = br * R; r < std::min(rows, (br + 1) * R) && !any; ++r)
        for (int64_t c = bc * C; c < std::min(cols, (bc + 1) * C) && !any; ++c)
          any = w[r * cols + c] != 0.0f;
      if (!any) continue;
      m.col_idx.push_back(static_cast<int32_t>(bc));
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < C; ++j) {
          const int64_t r = br * R + i, c = bc * C + j;
          m.values.push_back(r < rows && c < cols ? w[r * cols + c] : 0.0f);
        }
    }
    m.row_ptr.push_back(static_cast<int64_t>(m.col_idx.size()));
  }
  return m;
}

std::vector<float> to_dense(const Bsr& m) {
  std::vector<float> w(static_cast<size_t>(m.rows * m.cols), 0.0f);
  const int64_t R = m.block.rows, C = m.block.cols;
  for (int64_t br = 0; br < m.block_rows(); ++br)
    for (int64_t b = m.row_ptr[br]; b < m.row_ptr[br + 1]; ++b)
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < C; ++j) {
          const int64_t r = br * R + i, c = m.col_idx[b] * C + j;
          if (r < m.rows && c < m.cols) w[r * m.cols + c] = m.values[(b * R + i) * C + j];
        }
  return w;
}

}  // namespace sparq::sparse
