// The chunk geometry the int8 and bf16 sparse-input layouts share
// (sparse/int8_sparse_input_pack.hpp, sparse/bf16_sparse_input_pack.hpp): output rows in chunks of
// chunk_rows, one entry per (chunk, input column); the dense form stores entries at fixed places,
// the masked form through offsets. A masked entry of a long chunk is a run of sub-entries of
// kSparseInputMaxRegisterRows rows each, so that a thread can start at any of them.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

// Chunks of more than this many rows are long: their sums live in memory, the dense form stores
// their last chunk only up to its rows, the masked form splits their entries into sub-entries of
// this many rows.
inline constexpr int kSparseInputMaxRegisterRows = 256;

template <int kValueBytes>
struct SparseInputChunks {
  int64_t out = 0, in = 0;
  int chunk_rows = 256;
  bool masked = false;
  AlignedVector<uint8_t> entries;  // + 64 bytes of padding
  std::vector<uint32_t> offsets;   // masked form: [sub_chunks() x in], each sub-entry's first byte

  int64_t chunks() const { return (out + chunk_rows - 1) / chunk_rows; }
  int64_t padded_out() const { return chunks() * chunk_rows; }
  bool long_chunks() const { return chunk_rows > kSparseInputMaxRegisterRows; }
  // Masked form: the rows of one sub-entry (the chunk's, up to kSparseInputMaxRegisterRows), and
  // the number of sub-entries per column over all chunks (the last chunk holds only those
  // with rows below out).
  int sub_rows() const { return sub_rows_of(chunk_rows); }
  int64_t sub_chunks() const { return sub_chunks_of(out, chunk_rows); }
  // The same for a weight not packed yet (to weigh the masked form before packing).
  static int sub_rows_of(int chunk_rows) {
    return std::min(chunk_rows, kSparseInputMaxRegisterRows);
  }
  static int64_t sub_chunks_of(int64_t out, int chunk_rows) {
    return (out + sub_rows_of(chunk_rows) - 1) / sub_rows_of(chunk_rows);
  }
  // Masked form: the sub-chunks [first, end) of chunk c; entry (c, j) is their sub-entries in
  // order.
  int64_t first_sub_chunk(int64_t c) const { return c * (chunk_rows / sub_rows()); }
  int64_t end_sub_chunk(int64_t c) const { return std::min(first_sub_chunk(c + 1), sub_chunks()); }
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
// max_masked_rows), or empty.
inline std::string sparse_input_chunk_rows_error(int chunk_rows, bool masked, int max_rows,
                                                 int max_masked_rows) {
  const int limit = masked ? max_masked_rows : max_rows;
  if (chunk_rows >= 64 && chunk_rows <= limit &&
      std::has_single_bit(static_cast<unsigned>(chunk_rows)))
    return {};
  return "chunk_rows must be a power of two in 64.." + std::to_string(limit) +
         (masked ? " (masked form)" : "") + ", got " + std::to_string(chunk_rows);
}

}  // namespace sparq::sparse
