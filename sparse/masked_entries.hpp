// The masked form's entries, shared by the int8 and bf16 sparse-input layouts
// (sparse/int8_sparse_input_pack.hpp, sparse/bf16_sparse_input_pack.hpp): entry (chunk, column) is
// the chunk's sub-entries in order; a sub-entry is its slices' masks (kSliceRows bits: bit p set,
// position p holds a non-zero weight), then each slice's non-zero values in position order.
// offsets[sub_chunk * in + column] is a sub-entry's first byte.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

namespace sparq::sparse {

template <int kSliceRows>
using SliceMask = std::conditional_t<kSliceRows == 64, uint64_t, uint32_t>;

// Fills p.offsets (sized sub_chunks() x in) and p.entries (sized to the total, zeroed) with the
// entries, chunk after chunk and column after column. row_at(pos): the slice row at position pos;
// stored(row, column): the weight's stored value (a T of the layout's value bytes), or nothing for
// a zero weight (rows past out included).
template <int kSliceRows, typename T, typename Chunks, typename RowAt, typename Stored>
void pack_masked_entries(Chunks& p, RowAt row_at, Stored stored) {
  using Mask = SliceMask<kSliceRows>;
  static_assert(sizeof(Mask) * 8 == kSliceRows);
  const int sub_slices = p.sub_rows() / kSliceRows;
  int64_t at = 0;
  for (int64_t c = 0; c < p.chunks(); ++c)
    for (int64_t j = 0; j < p.in; ++j)
      for (int64_t sc = p.first_sub_chunk(c); sc < p.end_sub_chunk(c); ++sc) {
        p.offsets[static_cast<size_t>(sc * p.in + j)] = static_cast<uint32_t>(at);
        const int64_t masks_at = at;
        at += static_cast<int64_t>(sizeof(Mask)) * sub_slices;
        for (int s = 0; s < sub_slices; ++s) {
          Mask mask = 0;
          for (int pos = 0; pos < kSliceRows; ++pos) {
            const std::optional<T> v = stored(sc * p.sub_rows() + s * kSliceRows + row_at(pos), j);
            if (!v) continue;
            mask |= Mask{1} << pos;
            std::memcpy(p.entries.data() + at, &*v, sizeof(T));
            at += static_cast<int64_t>(sizeof(T));
          }
          std::memcpy(p.entries.data() + masks_at + sizeof(Mask) * s, &mask, sizeof(Mask));
        }
      }
}

// Calls f(row within the chunk, stored value) for every non-zero weight of entry (c, j), in
// position order.
template <int kSliceRows, typename T, typename Chunks, typename RowAt, typename F>
void for_each_masked_weight(const Chunks& p, int64_t c, int64_t j, RowAt row_at, F f) {
  using Mask = SliceMask<kSliceRows>;
  const int sub_slices = p.sub_rows() / kSliceRows;
  for (int64_t sc = p.first_sub_chunk(c); sc < p.end_sub_chunk(c); ++sc) {
    const uint8_t* masks = p.entries.data() + p.offsets[static_cast<size_t>(sc * p.in + j)];
    const uint8_t* e = masks + sizeof(Mask) * sub_slices;
    const int64_t first_row = (sc - p.first_sub_chunk(c)) * p.sub_rows();
    for (int s = 0; s < sub_slices; ++s) {
      Mask mask;
      std::memcpy(&mask, masks + sizeof(Mask) * s, sizeof(Mask));
      for (int pos = 0; pos < kSliceRows; ++pos)
        if (mask >> pos & 1) {
          T v;
          std::memcpy(&v, e, sizeof(T));
          e += sizeof(T);
          f(first_row + s * kSliceRows + row_at(pos), v);
        }
    }
  }
}

}  // namespace sparq::sparse
