// The decoder's attention for one new token and one key/value head: the `group` query heads that
// share that key/value head (grouped-query attention) each score the `len` cached positions
// (q . k_j * scale), softmax, then sum_j p_j v_j. Keys and values are rows `stride` floats apart
// (the cache holds every key/value head of a position in one row). Doing a whole group at once
// reads each cached key and value once for all of its query heads. The AVX2 variant (target
// attributes, called after a CPUID check, head sizes that are multiples of 8) and the portable
// twin it is tested against.
#pragma once

#include <cstdint>

namespace sparq::models {

// q: `group` rows of d floats, contiguous; scores: scratch of at least group * len floats; out:
// `group` rows of d floats, contiguous.
void cached_attention(const float* q, int64_t group, const float* keys, const float* values,
                      int64_t len, int64_t d, int64_t stride, float scale, float* scores,
                      float* out);

namespace detail {
void cached_attention_portable(const float* q, int64_t group, const float* keys,
                               const float* values, int64_t len, int64_t d, int64_t stride,
                               float scale, float* scores, float* out);
void cached_attention_avx2(const float* q, int64_t group, const float* keys, const float* values,
                           int64_t len, int64_t d, int64_t stride, float scale, float* scores,
                           float* out);
}  // namespace detail

}  // namespace sparq::models
