// The chunk geometry the int8 and bf16 sparse-input layouts share
// (sparse/int8_sparse_input_pack.hpp, sparse/bf16_sparse_input_pack.hpp): output rows in chunks of
// chunk_rows, one entry per (chunk, input column); the dense form stores entries at fixed places,
// the masked form through offsets.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

// Chunks of more than this many rows are long (dense form only): their sums live in memory and
// their last chunk is stored only up to its rows.
inline constexpr int kSparseInputMaxRegisterRows = 256;

template <int kValueBytes>
struct SparseInputChunks {
  int64_t out = 0, in = 0;
  int chunk_rows = 256;
  bool masked = false;
  AlignedVector<uint8_t> entries;  // + 64 bytes of padding
  std::vector<uint32_t> offsets;   // masked form: [chunks x in]

  int64_t chunks() const { return (out + chunk_rows - 1) / chunk_rows; }
  int64_t padded_out() const { return chunks() * chunk_rows; }
  bool long_chunks() const { return chunk_rows > kSparseInputMaxRegisterRows; }
  // Long chunks store the last chunk's rows only up to the next multiple of 64; the others store
  // whole chunks.
  int64_t stored_rows(int64_t c) const {
    if (!long_chunks()) return chunk_rows;
    return std::min<int64_t>(chunk_rows, (out + 63) / 64 * 64 - c * chunk_rows);
  }
  // Dense form: entry (chunk c, column j)'s first byte.
  int64_t entry_offset(int64_t c, int64_t j) const {
    return kValueBytes * (c * in * chunk_rows + j * stored_rows(c));
  }
};

// Why chunk_rows is not a valid height (a power of two in 64..max_rows, masked at most
// kSparseInputMaxRegisterRows), or empty.
inline std::string sparse_input_chunk_rows_error(int chunk_rows, bool masked, int max_rows) {
  const int limit = masked ? kSparseInputMaxRegisterRows : max_rows;
  if (chunk_rows >= 64 && chunk_rows <= limit &&
      std::has_single_bit(static_cast<unsigned>(chunk_rows)))
    return {};
  return "chunk_rows must be a power of two in 64.." + std::to_string(limit) +
         (masked ? " (masked form)" : "") + ", got " + std::to_string(chunk_rows);
}

}  // namespace sparq::sparse
