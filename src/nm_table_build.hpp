// Builds the per-slice activation tables of the 2:4 table kernels (sparse/nm_table_pack.hpp):
// with AVX-512BW where the CPU has it (and SPARQ_MAX_ISA allows avx512), else the portable
// sparse::build_nm_table_reference. Both give identical bytes.
#pragma once

#include <cstdint>

#include "sparse/nm_table_pack.hpp"

namespace sparq {

void build_nm_table(sparse::NmTableType type, int quarters, const uint8_t* slice, int64_t in,
                    int64_t unit_begin, int64_t unit_end, uint8_t* table);

namespace detail {
// Units whose columns all lie below `in`; the caller builds a partial last unit portably.
void build_nm_table_avx512(sparse::NmTableType type, int quarters, const uint8_t* slice,
                           int64_t unit_begin, int64_t unit_end, uint8_t* table);
}  // namespace detail

}  // namespace sparq
