// The reference kernels agree with each other (dense, BSR, N:M, bf16, int8), the epilogue runs in
// the documented order, and the quantization helpers round half to even and saturate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/types.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bsr.hpp"
#include "sparse/nm.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

double gelu_tanh(double x) {
  return 0.5 * x *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

struct Shape {
  int64_t tokens, out, in;
};

// Inputs for one layer: x, bias and residual.
struct Io {
  std::vector<float> x, bias, residual;
  Io(const Shape& s, uint32_t seed)
      : x(test::random_floats(static_cast<size_t>(s.tokens * s.in), seed)),
        bias(test::random_floats(static_cast<size_t>(s.out), seed + 1)),
        residual(test::random_floats(static_cast<size_t>(s.tokens * s.out), seed + 2)) {}
  sparse::Epilogue epilogue(int variant) const {
    switch (variant) {
      case 0:
        return {};
      case 1:
        return {bias.data(), Activation::relu, nullptr};
      default:
        return {bias.data(), Activation::gelu_tanh, residual.data()};
    }
  }
};

const Shape kShapes[] = {{1, 37, 53}, {5, 16, 16}, {17, 13, 30}, {3, 1, 1}, {2, 64, 7}};

// Runs `want_kernel` and `got_kernel` (each called as kernel(x, epilogue, y)) on one layer's
// inputs with one epilogue variant and expects the same outputs within 1e-5.
template <typename WantKernel, typename GotKernel>
void expect_agreement(const Shape& s, uint32_t seed, int variant, WantKernel want_kernel,
                      GotKernel got_kernel, const char* what) {
  const Io io(s, seed);
  std::vector<float> want(static_cast<size_t>(s.tokens * s.out));
  std::vector<float> got(want.size(), -999.0f);
  want_kernel(io.x.data(), io.epilogue(variant), want.data());
  got_kernel(io.x.data(), io.epilogue(variant), got.data());
  test::expect_close(got, want, 1e-5, what);
}

std::vector<float> random_weight(const Shape& s, uint32_t seed) {
  return test::random_floats(static_cast<size_t>(s.out * s.in), seed);
}

TEST(ReferenceAgreement, BsrMatchesDenseF32) {
  uint32_t seed = 1;
  for (const Shape& s : kShapes)
    for (BlockShape block : {BlockShape{4, 1}, BlockShape{1, 4}, BlockShape{16, 1},
                             BlockShape{4, 4}, BlockShape{3, 5}})
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(testing::Message()
                     << "tokens=" << s.tokens << " out=" << s.out << " in=" << s.in
                     << " block=" << block.rows << "x" << block.cols << " epilogue=" << variant);
        const auto w = sparse::prune_blocks(random_weight(s, seed++), s.out, s.in, block, 0.7);
        const auto bsr = sparse::to_bsr(w, s.out, s.in, block);
        expect_agreement(
            s, seed++, variant,
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_f32(x, s.tokens, w.data(), s.out, s.in, e, y);
            },
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_bsr_f32(x, s.tokens, bsr, e, y);
            },
            "linear_bsr_f32");
      }
}

TEST(ReferenceAgreement, NmMatchesDenseF32) {
  uint32_t seed = 100;
  for (const Shape& s : kShapes)
    for (auto [n, m] : {std::pair{2, 4}, std::pair{1, 4}, std::pair{4, 8}})
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(testing::Message() << "tokens=" << s.tokens << " out=" << s.out << " in="
                                        << s.in << " " << n << ":" << m << " epilogue=" << variant);
        const auto w = sparse::prune_n_m(random_weight(s, seed++), s.out, s.in, n, m);
        const auto nm = sparse::to_n_m(w, s.out, s.in, n, m);
        expect_agreement(
            s, seed++, variant,
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_f32(x, s.tokens, w.data(), s.out, s.in, e, y);
            },
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_nm_f32(x, s.tokens, nm, e, y);
            },
            "linear_nm_f32");
      }
}

TEST(ReferenceAgreement, BsrBf16MatchesDenseBf16) {
  uint32_t seed = 200;
  for (const Shape& s : kShapes)
    for (BlockShape block : {BlockShape{4, 1}, BlockShape{1, 4}, BlockShape{3, 5}})
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(testing::Message()
                     << "tokens=" << s.tokens << " out=" << s.out << " in=" << s.in
                     << " block=" << block.rows << "x" << block.cols << " epilogue=" << variant);
        const auto w = sparse::prune_blocks(random_weight(s, seed++), s.out, s.in, block, 0.5);
        const auto w_bf16 = sparse::to_bf16(w);
        const auto bsr = sparse::to_bsr(w, s.out, s.in, block);
        expect_agreement(
            s, seed++, variant,
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_bf16(x, s.tokens, w_bf16.data(), s.out, s.in, e, y);
            },
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_bsr_bf16(x, s.tokens, bsr, e, y);
            },
            "linear_bsr_bf16");
      }
}

TEST(ReferenceAgreement, NmBf16MatchesDenseBf16) {
  uint32_t seed = 250;
  for (const Shape& s : kShapes)
    for (auto [n, m] : {std::pair{2, 4}, std::pair{1, 4}})
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(testing::Message() << "tokens=" << s.tokens << " out=" << s.out << " in="
                                        << s.in << " " << n << ":" << m << " epilogue=" << variant);
        const auto w = sparse::prune_n_m(random_weight(s, seed++), s.out, s.in, n, m);
        const auto w_bf16 = sparse::to_bf16(w);
        const auto nm = sparse::to_n_m(w, s.out, s.in, n, m);
        expect_agreement(
            s, seed++, variant,
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_bf16(x, s.tokens, w_bf16.data(), s.out, s.in, e, y);
            },
            [&](const float* x, const sparse::Epilogue& e, float* y) {
              sparse::linear_nm_bf16(x, s.tokens, nm, e, y);
            },
            "linear_nm_bf16");
      }
}

TEST(ReferenceAgreement, Bf16RoundsInputsAndStaysCloseToF32) {
  const Shape s{9, 24, 64};
  const auto w = test::random_floats(static_cast<size_t>(s.out * s.in), 300);
  const Io io(s, 301);
  const auto w_bf16 = sparse::to_bf16(w);
  std::vector<float> f32(static_cast<size_t>(s.tokens * s.out)), bf16(f32.size());
  sparse::linear_f32(io.x.data(), s.tokens, w.data(), s.out, s.in, {}, f32.data());
  sparse::linear_bf16(io.x.data(), s.tokens, w_bf16.data(), s.out, s.in, {}, bf16.data());
  test::expect_close(bf16, f32, 1e-2, "linear_bf16 vs linear_f32");

  // Exactly what the header promises: x and w rounded to bf16, products summed in fp32.
  std::vector<float> want(f32.size());
  double max_diff_from_f32 = 0;
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t o = 0; o < s.out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < s.in; ++i)
        acc += double(sparse::from_bf16(sparse::to_bf16(io.x[t * s.in + i]))) *
               double(sparse::from_bf16(w_bf16[o * s.in + i]));
      want[t * s.out + o] = static_cast<float>(acc);
      max_diff_from_f32 = std::max(max_diff_from_f32, std::fabs(acc - f32[t * s.out + o]));
    }
  test::expect_close(bf16, want, 1e-5, "linear_bf16 vs bf16-rounded inputs");
  EXPECT_GT(max_diff_from_f32, 1e-4) << "the inputs were not rounded to bf16";
}

TEST(ReferenceAgreement, Int8MatchesF32OnDequantizedValues) {
  const Shape s{6, 10, 33};
  const auto xq = test::random_int8(static_cast<size_t>(s.tokens * s.in), 400);
  const auto wq = test::random_int8(static_cast<size_t>(s.out * s.in), 401);
  const auto x_scale = test::random_floats(static_cast<size_t>(s.tokens), 402, 0.01f, 0.1f);
  const auto w_scale = test::random_floats(static_cast<size_t>(s.out), 403, 0.01f, 0.1f);
  std::vector<float> x(xq.size()), w(wq.size());
  for (int64_t t = 0; t < s.tokens; ++t)
    for (int64_t i = 0; i < s.in; ++i) x[t * s.in + i] = xq[t * s.in + i] * x_scale[t];
  for (int64_t o = 0; o < s.out; ++o)
    for (int64_t i = 0; i < s.in; ++i) w[o * s.in + i] = wq[o * s.in + i] * w_scale[o];
  const Io io(s, 404);
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    std::vector<float> want(static_cast<size_t>(s.tokens * s.out)), got(want.size());
    sparse::linear_f32(x.data(), s.tokens, w.data(), s.out, s.in, io.epilogue(variant),
                       want.data());
    sparse::linear_int8(xq.data(), x_scale.data(), s.tokens, wq.data(), w_scale.data(), s.out, s.in,
                        io.epilogue(variant), got.data());
    test::expect_close(got, want, 1e-5, "linear_int8");
  }
}

TEST(ReferenceInt8, HandComputed2x3) {
  // x: 2 tokens x 3 inputs, w: 2 outputs x 3 inputs.
  const std::vector<int8_t> xq = {1, 2, 3, -4, 5, -6};
  const std::vector<int8_t> wq = {7, -8, 9, 10, 11, -12};
  const std::vector<float> x_scale = {0.5f, 0.25f}, w_scale = {2.0f, 4.0f};
  // acc = {18, -4, -122, 87}; * x_scale[t] * w_scale[o].
  std::vector<float> y(4, -1.0f);
  sparse::linear_int8(xq.data(), x_scale.data(), 2, wq.data(), w_scale.data(), 2, 3, {}, y.data());
  EXPECT_EQ(y, (std::vector<float>{18.0f, -8.0f, -61.0f, 87.0f}));

  const std::vector<float> bias = {1.0f, -1.0f};
  sparse::linear_int8(xq.data(), x_scale.data(), 2, wq.data(), w_scale.data(), 2, 3,
                      {bias.data(), Activation::relu, nullptr}, y.data());
  EXPECT_EQ(y, (std::vector<float>{19.0f, 0.0f, 0.0f, 86.0f}));

  // Full-scale values do not overflow the int32 accumulator.
  const int64_t in = 4096;
  const std::vector<int8_t> big_x(in, -128), big_w(in, -128);
  const float one = 1.0f;
  float big_y = 0;
  sparse::linear_int8(big_x.data(), &one, 1, big_w.data(), &one, 1, in, {}, &big_y);
  EXPECT_EQ(big_y, 16384.0f * 4096.0f);
}

// One output per (token, out): x = [[1], [2]], w = [[-2], [1]], bias = [0.5, -0.25], relu,
// residual = [[3, 10], [20, 30]]. Bias, then activation, then residual gives these values;
// residual before relu would give 1.5 for the first, bias after relu 3.5.
const std::vector<float> kEpX = {1.0f, 2.0f}, kEpW = {-2.0f, 1.0f}, kEpBias = {0.5f, -0.25f},
                         kEpResidual = {3.0f, 10.0f, 20.0f, 30.0f};
const std::vector<float> kEpWant = {3.0f, 10.75f, 20.0f, 31.75f};

TEST(ReferenceEpilogue, ActivationValues) {
  // Values of the definitions, computed in double precision elsewhere.
  EXPECT_NEAR(sparse::activate(1.0f, Activation::gelu_erf), 0.8413447460685429, 1e-6);
  EXPECT_NEAR(sparse::activate(-2.0f, Activation::gelu_erf), -0.04550026389635842, 1e-6);
  EXPECT_NEAR(sparse::activate(1.0f, Activation::silu), 0.7310585786300049, 1e-6);
  EXPECT_NEAR(sparse::activate(-2.0f, Activation::silu), -0.23840584404423515, 1e-6);
  EXPECT_NEAR(sparse::activate(1.0f, Activation::gelu_tanh), 0.8411919906082768, 1e-6);
  EXPECT_EQ(sparse::activate(-3.0f, Activation::relu), 0.0f);
  EXPECT_EQ(parse_activation("silu"), Activation::silu);
  EXPECT_EQ(parse_activation("gelu_erf"), Activation::gelu_erf);
  EXPECT_THROW(parse_activation("swish"), InvalidArgument);
}

TEST(ReferenceEpilogue, BiasThenActivationThenResidual) {
  const sparse::Epilogue e{kEpBias.data(), Activation::relu, kEpResidual.data()};
  std::vector<float> y(4, -1.0f);
  sparse::linear_f32(kEpX.data(), 2, kEpW.data(), 2, 1, e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_f32";

  y.assign(4, -1.0f);
  sparse::linear_bsr_f32(kEpX.data(), 2, sparse::to_bsr(kEpW, 2, 1, {1, 1}), e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_bsr_f32";

  y.assign(4, -1.0f);
  sparse::linear_bsr_f32(kEpX.data(), 2, sparse::to_bsr(kEpW, 2, 1, {4, 1}), e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_bsr_f32 4x1";

  y.assign(4, -1.0f);
  sparse::linear_nm_f32(kEpX.data(), 2, sparse::to_n_m(kEpW, 2, 1, 1, 4), e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_nm_f32";

  y.assign(4, -1.0f);
  const auto w_bf16 = sparse::to_bf16(kEpW);
  sparse::linear_bf16(kEpX.data(), 2, w_bf16.data(), 2, 1, e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_bf16";

  y.assign(4, -1.0f);
  sparse::linear_bsr_bf16(kEpX.data(), 2, sparse::to_bsr(kEpW, 2, 1, {1, 1}), e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_bsr_bf16";

  y.assign(4, -1.0f);
  const std::vector<int8_t> xq = {1, 2}, wq = {-2, 1};
  const std::vector<float> ones = {1.0f, 1.0f};
  sparse::linear_int8(xq.data(), ones.data(), 2, wq.data(), ones.data(), 2, 1, e, y.data());
  EXPECT_EQ(y, kEpWant) << "linear_int8";
}

TEST(ReferenceEpilogue, GeluAfterBiasBeforeResidual) {
  // acc = 1 * 0.5 = 0.5; + bias 0.5 = 1; gelu(1) + residual 1.
  const float x = 1.0f, w = 0.5f, bias = 0.5f, residual = 1.0f;
  float y = 0;
  sparse::linear_f32(&x, 1, &w, 1, 1, {&bias, Activation::gelu_tanh, &residual}, &y);
  EXPECT_NEAR(y, gelu_tanh(1.0) + 1.0, 1e-6);
  sparse::linear_f32(&x, 1, &w, 1, 1, {nullptr, Activation::gelu_tanh, nullptr}, &y);
  EXPECT_NEAR(y, gelu_tanh(0.5), 1e-6);
}

TEST(ReferenceActivation, Values) {
  for (float v : {-6.0f, -3.0f, -1.0f, -0.5f, -1e-3f, 0.0f, 1e-3f, 0.5f, 1.0f, 2.0f, 3.0f, 8.0f}) {
    SCOPED_TRACE(v);
    EXPECT_NEAR(sparse::activate(v, Activation::gelu_tanh), gelu_tanh(v),
                1e-6 * (1.0 + std::fabs(v)));
    EXPECT_EQ(sparse::activate(v, Activation::relu), v > 0 ? v : 0.0f);
    EXPECT_EQ(sparse::activate(v, Activation::none), v);
  }
  EXPECT_NEAR(sparse::activate(1.0f, Activation::gelu_tanh), 0.8411920, 1e-6);
  EXPECT_NEAR(sparse::activate(-1.0f, Activation::gelu_tanh), -0.1588080, 1e-6);
}

TEST(ReferenceQuantize, RowsRoundHalfToEven) {
  const int64_t cols = 8;
  const std::vector<float> v = {
      127.0f, 2.5f, -2.5f, 3.5f, 0.5f,  -127.0f, 1.5f,  126.5f,  // amax 127: v * 1
      254.0f, 5.0f, -5.0f, 7.0f, 1.0f,  -254.0f, -3.0f, 0.0f,    // amax 254: v * 0.5
      0.0f,   0.0f, 0.0f,  0.0f, -0.0f, 0.0f,    0.0f,  0.0f,    // all zero
      -1.0f,  0.0f, 0.0f,  0.0f, 0.0f,  0.0f,    0.0f,  0.25f,   // negative maximum
  };
  const int64_t rows = 4;
  std::vector<int8_t> q(v.size(), 55);
  std::vector<float> scale(rows, -1.0f);
  sparse::quantize_rows(v.data(), rows, cols, q.data(), scale.data());
  EXPECT_EQ(scale[0], 1.0f);
  EXPECT_EQ(scale[1], 2.0f);
  EXPECT_EQ(scale[2], 0.0f);
  EXPECT_EQ(scale[3], 1.0f / 127.0f);
  const std::vector<int8_t> want = {
      127,  2, -2, 4, 0, -127, 2,  126,  //
      127,  2, -2, 4, 0, -127, -2, 0,    //
      0,    0, 0,  0, 0, 0,    0,  0,    //
      -127, 0, 0,  0, 0, 0,    0,  32,   // 0.25 * 127 = 31.75
  };
  EXPECT_EQ(q, want);
}

TEST(ReferenceQuantize, RandomRowsReconstructWithinHalfAStep) {
  const int64_t rows = 7, cols = 45;
  const auto v = test::random_floats(static_cast<size_t>(rows * cols), 500, -3.0f, 3.0f);
  std::vector<int8_t> q(v.size());
  std::vector<float> scale(rows);
  sparse::quantize_rows(v.data(), rows, cols, q.data(), scale.data());
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    int qmax = 0;
    for (int64_t c = 0; c < cols; ++c) {
      amax = std::max(amax, std::fabs(v[r * cols + c]));
      qmax = std::max(qmax, std::abs(int{q[r * cols + c]}));
    }
    EXPECT_EQ(scale[r], amax / 127.0f) << "row " << r;
    EXPECT_EQ(qmax, 127) << "row " << r;
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_LE(std::fabs(q[r * cols + c] * scale[r] - v[r * cols + c]), 0.5001f * scale[r])
          << r << "," << c;
  }
}

TEST(ReferenceQuantize, TinyRowsDoNotOverflowTheInverseScale) {
  // max|v| = 1e-37 is a normal float, but 127 / 1e-37 overflows to infinity. Either the row is
  // quantized faithfully (q * scale within half a step of v) or flushed to zero (scale 0, q 0);
  // saturating every non-zero to +-127 (and 0 * inf = NaN for the zeros) is neither.
  const int64_t cols = 4;
  const std::vector<float> v = {1e-37f, 3e-38f, 0.0f, -7e-38f};
  std::vector<int8_t> q(v.size(), 55);
  float scale = -1.0f;
  sparse::quantize_rows(v.data(), 1, cols, q.data(), &scale);
  if (scale == 0.0f) {
    EXPECT_EQ(q, std::vector<int8_t>(v.size(), 0));
  } else {
    for (int64_t c = 0; c < cols; ++c)
      EXPECT_LE(std::fabs(q[c] * scale - v[c]), 0.5001f * scale)
          << "column " << c << ": q = " << int{q[c]} << ", scale = " << scale;
  }
}

TEST(ReferenceQuantize, RequantizeSaturatesAndRoundsHalfToEven) {
  EXPECT_EQ(sparse::requantize(1000.0f, 1.0f), 127);
  EXPECT_EQ(sparse::requantize(-1000.0f, 1.0f), -128);
  EXPECT_EQ(sparse::requantize(1e30f, 1.0f), 127);
  EXPECT_EQ(sparse::requantize(-1e30f, 1.0f), -128);
  EXPECT_EQ(sparse::requantize(127.4f, 1.0f), 127);
  EXPECT_EQ(sparse::requantize(127.6f, 1.0f), 127);
  EXPECT_EQ(sparse::requantize(-128.4f, 1.0f), -128);
  EXPECT_EQ(sparse::requantize(-129.0f, 1.0f), -128);
  EXPECT_EQ(sparse::requantize(2.5f, 1.0f), 2);
  EXPECT_EQ(sparse::requantize(3.5f, 1.0f), 4);
  EXPECT_EQ(sparse::requantize(-2.5f, 1.0f), -2);
  EXPECT_EQ(sparse::requantize(0.5f, 1.0f), 0);
  EXPECT_EQ(sparse::requantize(5.0f, 0.5f), 2);  // 2.5
  EXPECT_EQ(sparse::requantize(0.26f, 100.0f), 26);
  EXPECT_EQ(sparse::requantize(-0.26f, 100.0f), -26);
}

TEST(ReferenceErrors, NullOrEmptyInputsThrow) {
  const std::vector<float> x(8, 1.0f), w(8, 1.0f);
  std::vector<float> y(8);
  EXPECT_THROW(sparse::linear_f32(nullptr, 1, w.data(), 2, 4, {}, y.data()), InvalidArgument);
  EXPECT_THROW(sparse::linear_f32(x.data(), 1, w.data(), 2, 4, {}, nullptr), InvalidArgument);
  EXPECT_THROW(sparse::linear_f32(x.data(), 0, w.data(), 2, 4, {}, y.data()), InvalidArgument);
  const auto bsr = sparse::to_bsr(w, 2, 4, {1, 4});
  EXPECT_THROW(sparse::linear_bsr_f32(nullptr, 1, bsr, {}, y.data()), InvalidArgument);
  EXPECT_THROW(sparse::linear_bsr_f32(x.data(), 0, bsr, {}, y.data()), InvalidArgument);
  EXPECT_THROW(sparse::linear_bsr_bf16(x.data(), 0, bsr, {}, y.data()), InvalidArgument);
  const auto nm = sparse::to_n_m(w, 2, 4, 4, 4);
  EXPECT_THROW(sparse::linear_nm_f32(nullptr, 1, nm, {}, y.data()), InvalidArgument);
  const auto w_bf16 = sparse::to_bf16(w);
  EXPECT_THROW(sparse::linear_bf16(nullptr, 1, w_bf16.data(), 2, 4, {}, y.data()), InvalidArgument);
  const std::vector<int8_t> q(8, 1);
  const std::vector<float> s(2, 1.0f);
  EXPECT_THROW(sparse::linear_int8(nullptr, s.data(), 1, q.data(), s.data(), 2, 4, {}, y.data()),
               InvalidArgument);
  EXPECT_THROW(sparse::linear_int8(q.data(), s.data(), 0, q.data(), s.data(), 2, 4, {}, y.data()),
               InvalidArgument);
}

}  // namespace
}  // namespace sparq
