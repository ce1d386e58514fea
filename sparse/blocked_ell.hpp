// Blocked-ELL (cuSPARSE's block-sparse SpMM format): square B x B blocks, every block row padded to
// the same number of block slots; a padded slot has block column -1 and zero values. Dimensions
// are padded up to multiples of B. Built on the CPU at pack time, uploaded once.
#pragma once

#include <cstdint>
#include <vector>

#include "sparse/bsr.hpp"

namespace sparq::sparse {

struct BlockedEll {
  int64_t rows = 0, cols = 0;  // the padded matrix: multiples of block
  int64_t logical_rows = 0, logical_cols = 0;
  int block = 0;
  int64_t slots = 0;             // block slots per block row (max stored blocks in a row)
  std::vector<int32_t> col_idx;  // [rows / block x slots] block columns, -1 for padding
  std::vector<float> values;     // [rows x slots * block], row-major

  int64_t ell_cols() const { return slots * block; }  // cuSPARSE's ellCols, in elements
  // Fraction of value slots that are padding (work the SpMM does on zeros).
  double padding() const;
};

// From a BSR with square blocks. Throws InvalidArgument on non-square blocks.
BlockedEll to_blocked_ell(const Bsr& m);
std::vector<float> to_dense(const BlockedEll& m);  // logical_rows x logical_cols

}  // namespace sparq::sparse
