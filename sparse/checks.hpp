// Argument checks shared by the format and kernel entry points.
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <string>

#include "sparq/error.hpp"
#include "sparq/types.hpp"

namespace sparq::sparse {

inline void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}
// Hot-path forms: nothing is built unless the check fails.
inline void require(bool ok, const char* message) {
  if (!ok) throw InvalidArgument(message);
}
template <typename MakeMessage>
requires std::invocable<MakeMessage>
inline void require(bool ok, MakeMessage&& make_message) {
  if (!ok) throw InvalidArgument(make_message());
}

// A [rows x cols] matrix given as a span: both sizes positive, the span exactly rows*cols long.
inline void require_matrix(std::span<const float> values, int64_t rows, int64_t cols,
                           const char* what) {
  require(rows > 0 && cols > 0, std::string(what) + ": rows and cols must be positive, got " +
                                    std::to_string(rows) + " x " + std::to_string(cols));
  require(static_cast<int64_t>(values.size()) == rows * cols,
          std::string(what) + ": expected " + std::to_string(rows * cols) + " values for " +
              std::to_string(rows) + " x " + std::to_string(cols) + ", got " +
              std::to_string(values.size()));
}

inline void require_block(BlockShape block, const char* what) {
  require(block.rows > 0 && block.cols > 0,
          std::string(what) + ": block shape must be positive, got " + std::to_string(block.rows) +
              "x" + std::to_string(block.cols));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace sparq::sparse
