// One query row of one head attending over a key/value cache (the decoder's attention): scores
// q . k_j * scale for the `len` cached positions, softmax, then sum_j p_j v_j. Keys and values
// are rows `stride` floats apart (the cache interleaves the key/value heads). The AVX2 variant
// (target attributes, called after a CPUID check, head sizes that are multiples of 8) and the
// portable twin it is tested against.
#pragma once

#include <cstdint>

namespace sparq::models {

// scores: scratch of at least `len` floats; out: d floats.
void cached_attention_row(const float* q, const float* keys, const float* values, int64_t len,
                          int64_t d, int64_t stride, float scale, float* scores, float* out);

namespace detail {
void cached_attention_row_portable(const float* q, const float* keys, const float* values,
                                   int64_t len, int64_t d, int64_t stride, float scale,
                                   float* scores, float* out);
void cached_attention_row_avx2(const float* q, const float* keys, const float* values, int64_t len,
                               int64_t d, int64_t stride, float scale, float* scores, float* out);
}  // namespace detail

}  // namespace sparq::models
