// What the int8 and bf16 sparse-input layers (src/int8_sparse_input_linear.hpp,
// src/bf16_sparse_input_linear.hpp) choose alike: the chunk height, and the measurement switch
// over the layout form.
#pragma once

#include <cstdint>
#include <optional>

namespace sparq {

// The largest of 256, 128, 64 rows per chunk that leaves 4 chunks per thread.
int sparse_input_chunk_rows(int64_t out, int threads);

// SPARQ_SPARSE_INPUT_FORM=dense|masked: true for masked, false for dense, nothing when unset (the
// layer then chooses by bytes); InvalidArgument for another value.
std::optional<bool> sparse_input_masked_override();

// The rows of a thread's unit of work in long chunks (more than 256 rows): the longest
// power-of-two part of a chunk, at least 256 rows, that gives every thread a unit and keeps the
// threads' shares within 80 % of even (a unit stays within a chunk); chunk_rows itself for short
// chunks. SPARQ_SPARSE_INPUT_UNIT_ROWS=N
// overrides (a measurement switch; a multiple of 64 dividing chunk_rows, else InvalidArgument).
int64_t sparse_input_unit_rows(int64_t out, int chunk_rows, int threads);

// SPARQ_SPARSE_INPUT_CHUNK_ROWS=N: the chunk height to pack (a measurement switch; the packers
// check it), nothing when unset; InvalidArgument when it is not a number.
std::optional<int> sparse_input_chunk_rows_override();

}  // namespace sparq
