// The packed layout of the bf16 sparse-input decode kernel, the bf16 twin of
// sparse/int8_sparse_input_pack.hpp: a decode step whose input entries are mostly zero reads only
// the weight columns of its non-zero inputs, so the weights are stored column by column, in
// chunks of output rows, and the kernel walks the list of non-zero inputs.
//
// Weights (bf16): output rows in chunks of `chunk_rows` (a power of two in 64..2048, masked form
// 64..4096; the last chunk zero-padded); one entry per (chunk, input column), made of
// chunk_rows / 32 slices of 32 rows, chunk after chunk and in column order within a chunk.
//   dense form:  a slice is its 32 bf16 values (64 bytes); entry (chunk c, column j) begins at
//                byte 2 * (c * in * chunk_rows + j * the chunk's stored rows): chunk_rows, or for
//                the last of long chunks its rows up to a multiple of 64 (entry_offset).
//   masked form: an entry is made of sub-entries of sub_rows() = min(chunk_rows, 256) rows (one
//                for short chunks; a long chunk's are contiguous, so that a thread's share of a
//                column is one run of bytes, as in the int8 layout); a sub-entry is its slices'
//                32-bit masks (bit p set: position p holds a non-zero weight), then each slice's
//                popcount(mask) non-zero values in position order; offsets[sc * in + j] is the
//                first byte of sub-chunk sc's sub-entry for column j. Zero weights cost no value
//                bytes: 2:4 weights take 1 + 1/8 bytes per weight where the dense form takes 2.
// Within a slice, position p = 2 i + h holds the slice's row 16 h + i: a dword lane of a loaded
// slice holds rows i and 16 + i, which the kernel widens to fp32 with one shift (even
// positions) and one mask (odd), so that its two accumulators of the slice hold rows 0..15 and
// 16..31 in order.
#pragma once

#include <cstdint>
#include <vector>

#include "sparse/sparse_input_chunks.hpp"

namespace sparq::sparse {

inline constexpr int kBf16SparseInputSlice = 32;
inline constexpr int kBf16SparseInputMaxChunkRows = 2048;
// The masked form's long chunks may be taller: a 2:4 column's run of sub-entries is then up to
// 4.5 KiB (runs read at random cost less per byte the longer they are; docs/benchmarks-avx512.md).
inline constexpr int kBf16SparseInputMaxMaskedChunkRows = 4096;

struct Bf16SparseInputWeights : SparseInputChunks<2> {
  AlignedVector<float> bias;  // per row, zero-padded to chunks * chunk_rows
  int64_t bytes() const;
};

// w: fp32 [out x in] holding bf16 values (other values are rounded to bf16); bias [out] or null;
// chunk_rows a power of two in 64..2048 (masked: ..4096). NotSupported if the masked entries would
// exceed 4 GiB (32-bit offsets).
Bf16SparseInputWeights pack_bf16_sparse_input(const float* w, const float* bias, int64_t out,
                                              int64_t in, bool masked, int chunk_rows);
// The bytes of the masked form of w's non-zeros (to choose the form before packing).
int64_t bf16_sparse_input_masked_bytes(const float* w, int64_t out, int64_t in, int chunk_rows);
std::vector<float> to_dense(const Bf16SparseInputWeights& w);

// The reference kernel, reading the packed entries: for the rows of chunks [c0, c1),
// acc[r - c0 * chunk_rows] = the sum over i < count, in list order, of w[r][columns[i]] * x[i],
// each product fused into the running sum (std::fma), as the kernel's vfmadd231ps does; rows past
// out are 0.
void sparse_input_reference(const Bf16SparseInputWeights& w, const int32_t* columns, const float* x,
                            int64_t count, int64_t c0, int64_t c1, float* acc);

}  // namespace sparq::sparse
