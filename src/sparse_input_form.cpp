#include "src/sparse_input_form.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "sparse/sparse_input_chunks.hpp"

namespace sparq {

int sparse_input_chunk_rows(int64_t out, int threads) {
  for (int rows : {256, 128})
    if (sparse::ceil_div(out, rows) >= 4 * int64_t{threads}) return rows;
  return 64;
}

std::optional<bool> sparse_input_masked_override() {
  const char* v = std::getenv("SPARQ_SPARSE_INPUT_FORM");
  if (v == nullptr || *v == 0) return std::nullopt;
  if (std::string(v) == "masked") return true;
  if (std::string(v) == "dense") return false;
  throw InvalidArgument(std::string("SPARQ_SPARSE_INPUT_FORM must be dense or masked, got '") + v +
                        "'");
}

int64_t sparse_input_unit_rows(int64_t out, int chunk_rows, int threads) {
  if (chunk_rows <= sparse::kSparseInputMaxRegisterRows) return chunk_rows;  // whole chunks
  if (const char* v = std::getenv("SPARQ_SPARSE_INPUT_UNIT_ROWS"); v != nullptr && *v != 0) {
    const int rows = std::atoi(v);
    if (rows < 64 || rows > chunk_rows || chunk_rows % rows != 0 || rows % 64 != 0)
      throw InvalidArgument("SPARQ_SPARSE_INPUT_UNIT_ROWS must be a multiple of 64 dividing " +
                            std::to_string(chunk_rows) + ", got '" + v + "'");
    return rows;
  }
  // The longest units that keep the threads' shares within 80 % of even (the last chunk is
  // shorter): a unit that reads part of each column's page cost (Zen 4, 4096 x 4096, 2 threads,
  // 50 % zero inputs) int8 430 us in 1024-row units against 382 in 2048-row ones, bf16 958
  // against 707 in whole 2048-row chunks; uneven shares cost more (5632 rows in 4096-row units
  // leave one thread 4096 rows, the other 1536).
  const int64_t used = sparse::ceil_div(out, 64) * 64;
  for (int64_t rows = chunk_rows; rows > 256; rows /= 2) {
    const int64_t units = sparse::ceil_div(used, rows);
    if (units < threads) continue;
    const int64_t busiest = std::min(sparse::ceil_div(units, int64_t{threads}) * rows, used);
    if (static_cast<double>(used) >= 0.8 * static_cast<double>(threads * busiest)) return rows;
  }
  return 256;
}

std::optional<int> sparse_input_chunk_rows_override() {
  const char* v = std::getenv("SPARQ_SPARSE_INPUT_CHUNK_ROWS");
  if (v == nullptr || *v == 0) return std::nullopt;
  char* end = nullptr;
  const long rows = std::strtol(v, &end, 10);
  if (*end != 0 || rows <= 0 || rows > (1 << 20))
    throw InvalidArgument(std::string("SPARQ_SPARSE_INPUT_CHUNK_ROWS must be a row count, got '") +
                          v + "'");
  return static_cast<int>(rows);
}

}  // namespace sparq
