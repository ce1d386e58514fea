// N:M compressed weight: for each row and each group of m consecutive columns, n kept values and
// their positions inside the group, packed in bit_width(m - 1) bits each (2 bits for 2:4).
// A group with fewer than n non-zeros stores explicit zeros, so every group has exactly n slots.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace sparq::sparse {

struct NmMatrix {
  int64_t rows = 0, cols = 0;
  int n = 2, m = 4;
  int index_bits = 2;
  std::vector<float> values;     // rows * groups_per_row() * n
  std::vector<uint8_t> indices;  // values.size() * index_bits bits, little-endian bit order

  int64_t groups_per_row() const { return (cols + m - 1) / m; }
  int index_of(int64_t slot) const;  // position inside its group of the slot-th kept value
  int64_t bytes() const;
};

// Throws InvalidArgument naming the first row/group with more than n non-zeros.
NmMatrix to_n_m(std::span<const float> w, int64_t rows, int64_t cols, int n, int m);
std::vector<float> to_dense(const NmMatrix& m);

}  // namespace sparq::sparse
