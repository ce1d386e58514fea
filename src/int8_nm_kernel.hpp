// The int8 2:4 row kernel (sparse/int8_nm_pack.hpp): int32 sums of rows [r0, r1) for up to
// kNmMaxTokens tokens. Per window of 64 columns the 32 kept weights sit in one ymm; the positions
// (2 bits each) become in-lane byte-shuffle indices that pick the matching 32 activations out of
// the window's 64, and |x| * sign-corrected w goes through vpmaddubsw (no saturation: both are in
// [-127, 127]) and vpmaddwd. The AVX2 variant is compiled with target attributes and called only
// after a CPUID check; the portable one is its reference twin.
#pragma once

#include <cstdint>

#include "sparse/int8_nm_pack.hpp"

namespace sparq {

inline constexpr int kNmMaxTokens = 4;

// x: s8 activations, token t at x + t * x_stride (padded_in() columns, zero past in); sums:
// [tokens][r1 - r0].
void int8_nm_rows_avx2(const sparse::Int8NmWeights& w, const int8_t* x, int64_t x_stride,
                       int tokens, int64_t r0, int64_t r1, int32_t* sums);
void int8_nm_rows_portable(const sparse::Int8NmWeights& w, const int8_t* x, int64_t x_stride,
                           int tokens, int64_t r0, int64_t r1, int32_t* sums);

}  // namespace sparq
