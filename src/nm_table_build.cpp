#include "src/nm_table_build.hpp"

#include <algorithm>

#include "jit/cpu_features.hpp"

namespace sparq {

void build_nm_table(sparse::NmTableType type, int quarters, const uint8_t* slice, int64_t in,
                    int64_t unit_begin, int64_t unit_end, uint8_t* table) {
  const bool has_layout =
      quarters == 4 || (type == sparse::NmTableType::bf16 && (quarters == 1 || quarters == 2));
  if (jit::best_float_isa() < jit::Isa::avx512 || !has_layout) {
    // The reference also refuses what no layout has.
    sparse::build_nm_table_reference(type, quarters, slice, in, unit_begin, unit_end, table);
    return;
  }
  const int64_t whole_units = in / sparse::nm_table_unit_columns(type);
  const int64_t vector_end = std::clamp(whole_units, unit_begin, unit_end);
  detail::build_nm_table_avx512(type, quarters, slice, unit_begin, vector_end, table);
  if (vector_end < unit_end)
    sparse::build_nm_table_reference(
        type, quarters, slice, in, vector_end, unit_end,
        table + (vector_end - unit_begin) * sparse::nm_table_unit_bytes(type, quarters));
}

}  // namespace sparq
