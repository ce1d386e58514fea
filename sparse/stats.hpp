// Sparsity statistics: how sparse a weight is and which structured patterns it satisfies.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::sparse {

// Fraction of entries equal to zero.
double sparsity(std::span<const float> w);

// Fraction of RxC blocks (edge blocks may be partial) that are entirely zero.
double block_sparsity(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block);

// True when every zero of w lies in an all-zero RxC block: the zeros are whole blocks.
bool fits_blocks(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block);

// Where a weight breaks N:M: a row and group holding more than n non-zeros.
struct NmViolation {
  int64_t row = 0;
  int64_t first_col = 0;
  int64_t last_col = 0;  // the group's last column (a partial last group ends early)
  int nonzeros = 0;
  std::string describe(int n, int m) const;
};
std::optional<NmViolation> first_n_m_violation(std::span<const float> w, int64_t rows, int64_t cols,
                                               int n, int m);
inline bool fits_n_m(std::span<const float> w, int64_t rows, int64_t cols, int n, int m) {
  return !first_n_m_violation(w, rows, cols, n, m).has_value();
}

// Everything at once, for reports: sparsity, the common block shapes and 2:4.
struct PatternReport {
  double sparsity = 0;
  struct BlockFit {
    BlockShape block;
    double block_sparsity;
    bool fits;
  };
  std::vector<BlockFit> blocks;  // 4x1, 1x4, 16x1, 4x4
  bool fits_2_4 = false;
};
PatternReport analyze(std::span<const float> w, int64_t rows, int64_t cols);

}  // namespace sparq::sparse
