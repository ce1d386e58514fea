// The packed layout of the AVX-512 VNNI int8 2:4 prefill kernel (jit/int8_nm_prefill_kernel.hpp):
// output rows in the vector lanes as in the 2:4 decode layout (sparse/int8_nm_decode_pack.hpp),
// with each row's activation picks stored ready for vpshufb instead of as 2-bit positions, so the
// kernel spends no instructions per window turning positions into indices.
//
// Output rows in groups of 16 (the last one zero-padded); per group and window of 8 input
// columns (windows past `in` zero), one 128-byte entry:
//   64 bytes: for rows r = 0..15, the dword (a0, a1, 4 + b0, 4 + b1): the window byte of each of
//             the row's four kept values (a0 < a1 kept in the first block of 4, b0 < b1 in the
//             second), the vpshufb indices that pick its activations out of the window's 8;
//   64 bytes: for rows r = 0..15, s8 w[r][a0], w[r][a1], w[r][4 + b0], w[r][4 + b1].
// 128 bytes per 16 x 8 weights, as many as dense int8. Entries of a group are consecutive.
// Activations: u8 = q + 128 (scales, padding and compensation as in the decode layout).
#pragma once

#include <cstdint>

#include "sparse/int8_nm_decode_pack.hpp"

namespace sparq::sparse {

inline constexpr int kNmPrefillEntryBytes = 128;

struct Int8NmPrefillWeights {
  int64_t out = 0, in = 0;
  int64_t windows = 0;                  // ceil(in / 8)
  int64_t groups = 0;                   // ceil(out / 16)
  AlignedVector<uint8_t> entries;       // groups x windows x 128 bytes
  AlignedVector<float> scales, bias;    // per row, padded to a multiple of 16 with zeros
  AlignedVector<int32_t> compensation;  // 128 * sum of the row's weights, likewise
  int64_t padded_in() const { return windows * kNmDecodeWindow; }
  int64_t bytes() const;
};

// wq: s8 [out x in] with at most 2 non-zeros per row in every group of 4 columns
// (InvalidArgument naming the first violation otherwise); w_scale [out]; bias [out] or null.
Int8NmPrefillWeights pack_int8_2of4_prefill(const int8_t* wq, const float* w_scale,
                                            const float* bias, int64_t out, int64_t in);
// The same from the decode layout (the layer that has both packs once).
Int8NmPrefillWeights pack_int8_2of4_prefill(const Int8NmDecodeWeights& decode);
std::vector<int8_t> to_dense(const Int8NmPrefillWeights& w);

}  // namespace sparq::sparse
