#include "sparse/nm.hpp"

#include <algorithm>
#include <bit>

#include "sparse/checks.hpp"
#include "sparse/stats.hpp"

namespace sparq::sparse {

int NmMatrix::index_of(int64_t slot) const {
  int value = 0;
  for (int b = 0; b < index_bits; ++b) {
    const int64_t bit = slot * index_bits + b;
    value |= ((indices[bit / 8] >> (bit % 8)) & 1) << b;
  }
  return value;
}

int64_t NmMatrix::bytes() const {
  return static_cast<int64_t>(values.size() * sizeof(float) + indices.size());
}

NmMatrix to_n_m(std::span<const float> w, int64_t rows, int64_t cols, int n, int m) {
  require(m >= 1 && m <= 256, "to_n_m: m must be in 1..256, got " + std::to_string(m));
  if (auto v = first_n_m_violation(w, rows, cols, n, m))
    throw InvalidArgument("to_n_m: weight is not " + std::to_string(n) + ":" + std::to_string(m) +
                          ": " + v->describe(n, m));
  NmMatrix out{
      rows, cols, n, m, std::max(1, static_cast<int>(std::bit_width(static_cast<unsigned>(m - 1)))),
      {},   {}};
  const int64_t slots = rows * out.groups_per_row() * n;
  out.values.reserve(static_cast<size_t>(slots));
  out.indices.assign(static_cast<size_t>((slots * out.index_bits + 7) / 8), 0);
  int64_t slot = 0;
  auto put = [&](float value, int index) {
    out.values.push_back(value);
    for (int b = 0; b < out.index_bits; ++b) {
      const int64_t bit = slot * out.index_bits + b;
      out.indices[bit / 8] |= static_cast<uint8_t>(((index >> b) & 1) << (bit % 8));
    }
    ++slot;
  };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < cols; c0 += m) {
      int kept = 0;
      bool used[256] = {};
      for (int j = 0; j < m && c0 + j < cols; ++j)
        if (w[r * cols + c0 + j] != 0.0f) {
          put(w[r * cols + c0 + j], j);
          used[j] = true;
          ++kept;
        }
      // Pad with zeros at unused positions so each group has n distinct slots.
      for (int j = 0; kept < n; ++j)
        if (!used[j]) {
          put(0.0f, j);
          ++kept;
        }
    }
  }
  return out;
}

std::vector<float> to_dense(const NmMatrix& m) {
  std::vector<float> w(static_cast<size_t>(m.rows * m.cols), 0.0f);
  int64_t slot = 0;
  for (int64_t r = 0; r < m.rows; ++r)
    for (int64_t g = 0; g < m.groups_per_row(); ++g)
      for (int k = 0; k < m.n; ++k, ++slot) {
        const int64_t c = g * m.m + m.index_of(slot);
        if (c < m.cols && m.values[slot] != 0.0f) w[r * m.cols + c] = m.values[slot];
      }
  return w;
}

}  // namespace sparq::sparse
