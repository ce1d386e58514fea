// The sparsity thresholds with which `auto` chooses kernels, shared by the CPU layers
// (src/sparse_linear.cpp) and the CUDA backend (gpu/backend.cpp), so both judge a weight alike.
#pragma once

#include <cstdint>

namespace sparq {

// Below this fraction of all-zero blocks (4x1 on the CPU, the candidate shape on the GPU), `auto`
// does not pick a block-sparse kernel.
inline constexpr double kMinBlockSparsityForSparse = 0.5;
// A 2:4 weight with fewer zeros than this (e.g. a dense one with a few zeros that happens to fit
// 2:4) runs dense under `auto`.
inline constexpr double kMinSparsityFor2of4 = 0.45;
// Calls of at most this many tokens are decode steps, which run a layer's decode kernel where it
// has one (every decode kernel takes 1..4 tokens). Under auto, f32/bf16 layers whose 4x1 block
// sparsity is below kMinBlockSparsityForF32Decode (and have no decode kernel) run them dense.
inline constexpr int64_t kDecodeTokens = 4;
inline constexpr double kMinBlockSparsityForF32Decode = 0.75;

}  // namespace sparq
