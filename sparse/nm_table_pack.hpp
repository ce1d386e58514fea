// The packed layout of the 2:4 table kernels (prefill: int8 on vpdpbusd, bf16 on vdpbf16ps;
// tokens in the vector lanes, 4 rows x 64 tokens per tile).
//
// A 2:4 row keeps 2 of every 4 columns: one of 6 pairs per block of 4 columns. A vpdpbusd lane
// multiplies 4 bytes, two blocks' kept pairs; a vdpbf16ps lane 2 bf16, one block's pair. With
// tokens in the lanes, each row wants its own activations, so the kernels do not gather them per
// row: per slice of tokens, a table holds every combination a row can ask for, built once and
// shared by every row (sparse/nm_table_pack.cpp builds it; src/nm_table_build_avx512.cpp too):
//   int8: per unit of 8 columns (blocks 2u, 2u + 1), 36 combinations c = 6 * p0 + p1 of block
//         2u's pair p0 and block 2u + 1's pair p1; lane dword = u8 (x[a0], x[b0], x[a1], x[b1]).
//   bf16: per unit of 4 columns (one block), 6 combinations c = p; lane dword = bf16 (x[a], x[b]).
// Pairs p = 0..5 are (0,1), (0,2), (0,3), (1,2), (1,3), (2,3). A slice holds 16 Q tokens (Q, the
// quarters: 4 for full slices; 1 or 2 for a bf16 call's short last slice), and a combination is
// Q zmm (64 Q bytes): vector q lane L dword j holds token 4 Q L + 4 q + j of the slice (the order
// the AVX-512 tile store transposes; for Q = 4 sparse::chunk_token's quads order). Table bytes per
// unit: 36 * 64 Q (int8), 6 * 64 Q (bf16).
//
// The kernels run a chunk of units (nm_table_chunk_units) over every row group before the next
// chunk; the entries are stored in that order, chunk-major (chunk, group, unit), so that a pass
// over a chunk reads them as one sequential stream.
//
// Weights: output rows in groups of 4 (the last group zero-padded). Per group and unit one
// 24-byte entry: u16 offset[r] (the row's combination times 64: times Q, which the kernel's
// address scale supplies, its byte offset inside the unit's table), then u32 value[r]: the row's
// kept values in lane order (int8: s8 w[a0], w[b0], w[a1], w[b1]; bf16: w[a], w[b]). A block with
// fewer than 2 non-zeros fills its pair with a zero weight. 24 bytes for 4 rows x 8 columns is
// 75 % of dense int8 (32); for 4 x 4 bf16, 75 % of dense bf16 (32).
//
// Activations, per slice: Q = 4, the 64-token slices of the kernels' 4x1 layouts (int8 quads_u8,
// u8 = q + 128, sparse/int8_block_pack.hpp; bf16, sparse/bf16_block_pack.hpp); Q = 1, 2 (bf16),
// [in][16 Q] bf16 in token order (layout_bf16_natural). The int8 compensation is the 4x1 kernel's:
// 128 * sum of the row's weights.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "src/aligned.hpp"

namespace sparq::sparse {

enum class NmTableType { int8, bf16 };

inline constexpr int kNmTableEntryBytes = 24;
inline constexpr int kNmTableQuarterBytes = 64;  // one vector of a combination: 16 tokens
inline constexpr int kNmTableSliceTokens = 64;

inline int nm_table_unit_columns(NmTableType type) { return type == NmTableType::int8 ? 8 : 4; }
inline int nm_table_combinations(NmTableType type) { return type == NmTableType::int8 ? 36 : 6; }
inline int64_t nm_table_unit_bytes(NmTableType type, int quarters = 4) {
  return int64_t{nm_table_combinations(type)} * kNmTableQuarterBytes * quarters;
}
// The quarters of a slice of `tokens` (1..64) tokens: 1 or 2 where a bf16 slice fits, else 4.
inline int nm_table_quarters(NmTableType type, int64_t tokens) {
  if (type == NmTableType::int8 || tokens > 32) return 4;
  return tokens > 16 ? 2 : 1;
}
// Units per chunk: 16 int8 (128 columns, 144 KiB of table: L2), 24 bf16 (96 columns, 36 KiB:
// mostly L1). Measured on Zen 4: bf16 16-32 units within 5 %, 96 (L2) 30 % slower.
inline int64_t nm_table_chunk_units(NmTableType type) {
  return type == NmTableType::int8 ? 16 : 24;
}
// Bytes between two input columns of an activation slice of 16 Q tokens.
inline int nm_table_column_bytes(NmTableType type, int quarters = 4) {
  return type == NmTableType::int8 ? 64 : 32 * quarters;
}
// Pair p (0..5) of a block keeps columns nm_pair_columns[p][0] < nm_pair_columns[p][1].
inline constexpr int kNmPairColumns[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

struct NmTableWeights {
  NmTableType type = NmTableType::int8;
  int64_t out = 0, in = 0;
  int64_t units = 0;                    // ceil(in / nm_table_unit_columns(type))
  std::vector<int64_t> group_begin;     // ceil(out / 4) + 1 entries (g * units), for the range
  AlignedVector<uint8_t> entries;       // kNmTableEntryBytes each, chunk-major
  AlignedVector<float> scales;          // int8: per output row, padded to 4 rows per group
  AlignedVector<float> bias;            // per output row, padded likewise (zeros without bias)
  AlignedVector<int32_t> compensation;  // int8: 128 * sum_i w[r][i], padded likewise

  int64_t groups() const { return static_cast<int64_t>(group_begin.size()) - 1; }
  int64_t bytes() const;
  // The entry of group g at unit u: chunk u / C starts after the earlier chunks' entries of
  // every group, and holds each group's units of the chunk in a row.
  int64_t entry_index(int64_t g, int64_t u) const {
    const int64_t chunk_units = nm_table_chunk_units(type);
    const int64_t chunk = u / chunk_units, first = chunk * chunk_units;
    return groups() * first + g * std::min(chunk_units, units - first) + (u - first);
  }
};

// wq: s8 [out x in] with at most 2 non-zeros in every row's block of 4 columns (InvalidArgument
// naming the first violation otherwise); w_scale [out]; bias [out] or null.
NmTableWeights pack_int8_2of4_table(const int8_t* wq, const float* w_scale, const float* bias,
                                    int64_t out, int64_t in);
// w: fp32 [out x in], 2:4 likewise, rounded to bf16 here; bias [out] or null.
NmTableWeights pack_bf16_2of4_table(const float* w, const float* bias, int64_t out, int64_t in);
// The weight the packed form holds (for round-trip tests): int8 as s8 values, bf16 as the
// bf16-rounded fp32 values.
std::vector<int8_t> to_dense_int8(const NmTableWeights& w);
std::vector<float> to_dense_bf16(const NmTableWeights& w);

// Builds the table of units [unit_begin, unit_end) from one activation slice of 16 * quarters
// tokens (the layouts above: [in][64] u8 or bf16 for 4 quarters, [in][16 Q] bf16 in token order
// for 1 or 2): table receives (unit_end - unit_begin) * nm_table_unit_bytes(type, quarters)
// bytes, unit unit_begin first. Columns past `in` count as zero. int8 takes 4 quarters only
// (InvalidArgument otherwise). Portable (the reference twin); src/nm_table_build.hpp has the
// vector version (identical bytes).
void build_nm_table_reference(NmTableType type, int quarters, const uint8_t* slice, int64_t in,
                              int64_t unit_begin, int64_t unit_end, uint8_t* table);

// x fp32 [tokens x in] -> [in][slice_tokens] bf16 in token order (rounded to nearest even),
// zero past `tokens`: the activations of a short bf16 slice (tokens <= slice_tokens).
void layout_bf16_natural(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                         uint16_t* dst);

}  // namespace sparq::sparse
