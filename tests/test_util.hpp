// Helpers shared by the test suites: seeded random data and tolerant comparisons.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sparse/reference.hpp"

namespace sparq::test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// The threshold that zeroes about `fraction` of x's entries (activation-sparsity tests).
inline float threshold_for(std::vector<float> x, double fraction) {
  for (float& v : x) v = std::fabs(v);
  std::sort(x.begin(), x.end());
  return x[static_cast<size_t>(fraction * static_cast<double>(x.size() - 1))];
}

// x with the entries below t in magnitude zeroed.
inline std::vector<float> thresholded(std::vector<float> x, float t) {
  for (float& v : x)
    if (std::fabs(v) < t) v = 0.0f;
  return x;
}

inline std::vector<int8_t> random_int8(size_t n, uint32_t seed, int lo = -127, int hi = 127) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<int8_t> v(n);
  for (int8_t& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

// Max |a - b| / (1 + |b|) over all elements; reports the worst index on failure.
inline void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(double(want[i])));
    if (std::isnan(err)) {  // a NaN is the worst error there is: report the first one
      worst = err;
      at = i;
      break;
    }
    if (err > worst) {
      worst = err;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << ": worst at " << at << ": got " << got[at] << ", want "
                        << want[at];
}

// Cosine similarity of two n-vectors, in double precision.
inline double cosine(const float* a, const float* b, int64_t n) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double(a[i]) * b[i];
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

// Zeroes whole Rx1 blocks (rows r0..r0+R-1 of one column; the last block may be short) of an
// [out x in] weight, each with probability `sparsity`.
template <typename T>
void zero_row_blocks(std::vector<T>& w, int64_t out, int64_t in, int64_t rows, double sparsity,
                     uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution zero(sparsity);
  for (int64_t g = 0; g < (out + rows - 1) / rows; ++g)
    for (int64_t c = 0; c < in; ++c)
      if (zero(rng))
        for (int64_t r = g * rows; r < std::min(out, g * rows + rows); ++r) w[r * in + c] = T{0};
}

// The int8 reference on fp32 activations quantized the way the layers do (per token, symmetric).
inline std::vector<float> reference_int8_on(const std::vector<float>& x, int64_t tokens, int64_t in,
                                            const int8_t* wq, const float* w_scale, int64_t out,
                                            const sparse::Epilogue& epilogue) {
  std::vector<int8_t> xq(static_cast<size_t>(tokens * in));
  std::vector<float> xs(static_cast<size_t>(tokens));
  sparse::quantize_rows(x.data(), tokens, in, xq.data(), xs.data());
  std::vector<float> y(static_cast<size_t>(tokens * out));
  sparse::linear_int8(xq.data(), xs.data(), tokens, wq, w_scale, out, in, epilogue, y.data());
  return y;
}

// Shapes with tails for the 4x1 tile kernels: out, in, tokens, block sparsity.
struct TileCase {
  int64_t out, in, tokens;
  double block_sparsity;
};
inline constexpr TileCase kTileShapes[] = {{4, 4, 16, 0.5},
                                           {5, 7, 1, 0.5},
                                           {3, 1, 3, 0.0},
                                           {17, 33, 17, 0.9},
                                           {64, 96, 64, 0.7},
                                           {66, 130, 65, 0.8},
                                           {128, 64, 130, 0.5},
                                           {31, 257, 127, 0.95},
                                           {8, 16, 200, 0.99},
                                           // in > 384 / 768: the column-prefetching variants
                                           {21, 800, 19, 0.9},
                                           {8, 1030, 33, 0.5}};

// Requantized int8 outputs against the fp32 reference: each within 1 of the reference's
// requantization, and only rarely off at all (a rounding tie moved by float reassociation).
inline void expect_requantized(const std::vector<int8_t>& got, const std::vector<float>& want,
                               float y_scale) {
  ASSERT_EQ(got.size(), want.size());
  int64_t off_by_one = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const int expect = sparse::requantize(want[i], 1.0f / y_scale);
    ASSERT_LE(std::abs(got[i] - expect), 1) << "element " << i;
    off_by_one += got[i] != expect;
  }
  EXPECT_LE(off_by_one, static_cast<int64_t>(want.size() / 500 + 1));
}

// The message of the exception of type E that f throws, or a marker saying what happened instead.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<another exception: ") + e.what() + ">";
  } catch (...) {
    return "<a non-std exception>";
  }
  return "<no exception>";
}

// EXPECT_THROW, then checks that what() names the problem.
#define EXPECT_THROW_WITH(statement, exception, needle)                                          \
  do {                                                                                           \
    EXPECT_THROW(statement, exception);                                                          \
    const std::string sparq_message_ = ::sparq::test::message_of<exception>([&] { statement; }); \
    EXPECT_NE(sparq_message_.find(needle), std::string::npos)                                    \
        << "expected the message to mention '" << (needle) << "', got: " << sparq_message_;      \
  } while (0)

// A list of a token's non-zero inputs (src/input_list.hpp) against the expected one: its count,
// columns and values (bit for bit, so that NaNs compare too), and every slot from the count to
// the buffers' end still holding its sentinel (nothing stored past the count).
template <typename V>
void expect_input_list(int64_t count, const std::vector<int32_t>& want_columns,
                       const std::vector<V>& want_values, const std::vector<int32_t>& columns,
                       const std::vector<V>& values, int32_t column_sentinel, V value_sentinel,
                       const std::string& what) {
  const auto same_bits = [](const V& a, const V& b) { return std::memcmp(&a, &b, sizeof(V)) == 0; };
  ASSERT_EQ(count, static_cast<int64_t>(want_columns.size())) << what;
  EXPECT_TRUE(std::equal(want_columns.begin(), want_columns.end(), columns.begin())) << what;
  EXPECT_TRUE(std::equal(want_values.begin(), want_values.end(), values.begin(), same_bits))
      << what;
  for (size_t i = static_cast<size_t>(count); i < columns.size(); ++i)
    ASSERT_EQ(columns[i], column_sentinel) << what << ": column slot " << i << " of " << count;
  for (size_t i = static_cast<size_t>(count); i < values.size(); ++i)
    ASSERT_TRUE(same_bits(values[i], value_sentinel))
        << what << ": value slot " << i << " of " << count;
}

// Sets an environment variable for a scope and restores what it was (sparq reads its switches,
// e.g. SPARQ_INT8_2OF4_PREFILL, when a layer is packed).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace sparq::test
