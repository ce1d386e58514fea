// Block compressed sparse rows (BSR) for any RxC block: the blocks holding at least one non-zero,
// row of blocks by row of blocks. Edge blocks are padded with zeros, so any shape round-trips.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::sparse {

struct Bsr {
  int64_t rows = 0, cols = 0;
  BlockShape block{};
  std::vector<int64_t> row_ptr;  // ceil(rows / R) + 1 offsets into col_idx
  std::vector<int32_t> col_idx;  // block column of each stored block
  std::vector<float> values;     // R*C values per stored block, row-major within the block

  int64_t block_rows() const { return static_cast<int64_t>(row_ptr.size()) - 1; }
  int64_t stored_blocks() const { return static_cast<int64_t>(col_idx.size()); }
  int64_t bytes() const;
};

Bsr to_bsr(std::span<const float> w, int64_t rows, int64_t cols, BlockShape block);
std::vector<float> to_dense(const Bsr& m);

}  // namespace sparq::sparse
