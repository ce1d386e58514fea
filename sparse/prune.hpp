// Magnitude pruning of a dense fp32 [rows x cols] weight (rows = out features, cols = in features).
// Each function returns a copy of the weight with the smallest-magnitude entries, blocks or group
// members set to zero; ties are broken by position so the result is deterministic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::sparse {

// Zeroes round(sparsity * rows * cols) entries of smallest |w|. sparsity in [0, 1].
std::vector<float> prune_unstructured(std::span<const float> w, int64_t rows, int64_t cols,
                                      double sparsity);

// Zeroes round(sparsity * number_of_blocks) whole RxC blocks of smallest L1 norm. Blocks at the
// right and bottom edges may be partial; they are scored and pruned like the others.
std::vector<float> prune_blocks(std::span<const float> w, int64_t rows, int64_t cols,
                                BlockShape block, double sparsity);

// Keeps the n largest |w| of every m consecutive columns of each row (a partial last group keeps
// at most n). 0 < n <= m.
std::vector<float> prune_n_m(std::span<const float> w, int64_t rows, int64_t cols, int n, int m);

// Prunes to a Pattern: block -> prune_blocks, n_m -> prune_n_m (sparsity ignored),
// dense/automatic -> prune_unstructured.
std::vector<float> prune(std::span<const float> w, int64_t rows, int64_t cols,
                         const Pattern& pattern, double sparsity);

}  // namespace sparq::sparse
