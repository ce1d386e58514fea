// The packed layout of the int8 sparse-input decode kernel: a decode step whose input entries are
// mostly zero (activation sparsity: entries below a threshold zeroed, as TEAL does) reads only the
// weight columns of its non-zero inputs. So the weights are stored column by column, in chunks of
// output rows, and the kernel walks the list of non-zero inputs.
//
// Weights: output rows in chunks of `chunk_rows` (a power of two in 64..4096, masked form 64..8192;
// the last chunk zero-padded); one entry per (chunk, input column), made of chunk_rows / 64 slices
// of 64 rows, chunk after chunk and in column order within a chunk. The kernel runs chunk by chunk,
// each over the list of non-zero inputs. Weight values are stored as u8 = w + 128 (w in -127..127),
// so that vpdpbusd takes them as its unsigned operand against s8 activations; the kernel subtracts
// 128 * (the sum of the step's quantized activations).
//   dense form:  a slice is its 64 values; entry (chunk c, column j) begins at byte
//                c * in * chunk_rows + j * (the chunk's stored rows: chunk_rows, or for the last
//                of long chunks its rows up to a multiple of 64); see entry_offset.
//   masked form: an entry is made of sub-entries of sub_rows() = min(chunk_rows, 256) rows (one
//                for short chunks; a long chunk's are contiguous, so that a thread's share of a
//                column is one run of bytes); a sub-entry is its slices' 8-byte masks (bit p set:
//                position p holds a non-zero weight), then each slice's popcount(mask) non-zero
//                values in position order, and ends where the next begins; offsets[sc * in + j]
//                is the first byte of sub-chunk sc's sub-entry for column j (sub-chunks count
//                sub_rows() rows from row 0, over all chunks). Zero weights cost no value bytes:
//                2:4 and block-sparse weights are stored at (1 - sparsity) + 1/8 bytes per
//                weight. The masks come first so that the kernel finds every slice's values
//                from loads that do not wait on each other (a mask before each slice made a
//                chain of dependent loads through the entry, which stalled on every entry the
//                skipped inputs left out of the hardware prefetchers' streams).
// Within a slice, position p = 16 L + 4 k + i (L, k, i in 0..3) holds the slice's row
// 16 k + 4 L + i: the kernel's byte unpacks of four columns return position 16 L + 4 k + i in
// dword lane 4 L + i of their k-th result, so accumulator k holds rows 16 k .. 16 k + 15 in order.
#pragma once

#include <bit>
#include <cstdint>
#include <vector>

#include "sparse/sparse_input_chunks.hpp"

namespace sparq::sparse {

inline constexpr int kSparseInputSlice = 64;
inline constexpr int kSparseInputMaxChunkRows = 4096;
// The masked form's chunks may be twice as tall: a column's run of sub-entries is then up to
// ~5 KiB for 2:4 weights, and a run read at random costs less per byte the longer it is (Zen 4,
// cold, one thread, 2:4 weights, half the columns: 1.25 / 2.5 / 5 KiB runs streamed about 11 / 13
// / 15 GB/s; docs/benchmarks-avx512.md). The sums of one chunk (32 KiB) still fit L1.
inline constexpr int kSparseInputMaxMaskedChunkRows = 8192;

struct Int8SparseInputWeights : SparseInputChunks<1> {
  AlignedVector<float> scales, bias;  // per row, zero-padded to chunks * chunk_rows
  int64_t bytes() const;
};

// wq: s8 [out x in] with values in -127..127 (InvalidArgument naming the first -128); w_scale
// [out]; bias [out] or null; chunk_rows a power of two in 64..4096 (masked: 64..8192). NotSupported
// if the masked entries would exceed 4 GiB (32-bit offsets).
Int8SparseInputWeights pack_int8_sparse_input(const int8_t* wq, const float* w_scale,
                                              const float* bias, int64_t out, int64_t in,
                                              bool masked, int chunk_rows);
std::vector<int8_t> to_dense(const Int8SparseInputWeights& w);

// The reference kernel, reading the packed entries: for the rows of chunks [c0, c1),
// acc[r - c0 * chunk_rows] = sum over i < count of w[r][columns[i]] * x[i] (exact; rows past out
// are 0).
void sparse_input_reference(const Int8SparseInputWeights& w, const int32_t* columns,
                            const int8_t* x, int64_t count, int64_t c0, int64_t c1, int32_t* acc);

}  // namespace sparq::sparse
