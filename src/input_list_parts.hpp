// A decode step of a sparse-input layer whose weight is stored in long chunks: the token's list of
// non-zero inputs is split into parts (one per thread, at most one per list unit: a part with no
// input would only zero and add sums), each part runs over every chunk into its own partial sums,
// then the parts are added and each 256-row unit finished (the epilogue). Whole chunks make each
// column's read one run of bytes. Items are part-major, so that the static split gives each
// thread one part over every chunk (chunk-major, a 5632-row layer in chunks of 4096 and 1536 rows
// gave one thread the whole 4096-row chunk and the other the 1536 rows). The int8 and bf16
// sparse-input layers share it.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/threading.hpp"

namespace sparq {

// units: the list's length in the kernel's units (int8: quads of inputs, bf16: inputs); rows in
// chunks of chunk_rows, summed in whole steps of `step` rows (a multiple of 64 dividing 256 or
// 256 itself); partial: per calling thread, grown as needed.
// run_part(first unit, end unit, chunk, rows of the chunk to sum, sums, part) runs the kernel;
// finish(sums, first row, rows) applies the epilogue to rows below out.
template <typename Sum, typename RunPart, typename Finish>
void run_input_list_parts(tbb::task_arena& arena, int64_t units, int64_t chunks, int64_t chunk_rows,
                          int64_t out, int64_t step, AlignedVector<Sum>& partial_storage,
                          const RunPart& run_part, const Finish& finish) {
  const int64_t used = sparse::ceil_div(out, step) * step;
  const int64_t parts = std::clamp<int64_t>(units, 1, arena.max_concurrency());
  if (static_cast<int64_t>(partial_storage.size()) < parts * used)
    partial_storage.resize(static_cast<size_t>(parts * used));
  Sum* const partial = partial_storage.data();
  parallel_ranges(arena, chunks * parts, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t p = i / chunks, c = i % chunks;
      const int64_t r0 = c * chunk_rows;
      run_part(units * p / parts, units * (p + 1) / parts, c, std::min(r0 + chunk_rows, used) - r0,
               partial + p * used + r0, p);
    }
  });
  parallel_ranges(arena, sparse::ceil_div(used, int64_t{256}), [&](int64_t u0, int64_t u1) {
    const int64_t r0 = u0 * 256, r1 = std::min(u1 * 256, used);
    for (int64_t p = 1; p < parts; ++p)
      for (int64_t r = r0; r < r1; ++r) partial[r] += partial[p * used + r];
    finish(partial + r0, r0, std::min(r1, out) - r0);
  });
}

}  // namespace sparq
