#include "sparse/reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"

namespace sparq::sparse {
namespace {

float finish(float acc, int64_t t, int64_t o, int64_t out, const Epilogue& e) {
  if (e.bias) acc += e.bias[o];
  acc = activate(acc, e.activation);
  if (e.residual) {
    const float x = e.residual[t * out + o];
    acc = e.operand == OperandOp::add ? acc + x : acc * x;
  }
  return acc;
}

void require_io(const void* x, int64_t tokens, const void* y, const char* what) {
  require(x != nullptr && y != nullptr, std::string(what) + ": x and y must not be null");
  require(tokens > 0, std::string(what) + ": tokens must be positive");
}

float bf16_round(float v) { return from_bf16(to_bf16(v)); }

}  // namespace

float activate(float v, Activation activation) {
  switch (activation) {
    case Activation::none:
      return v;
    case Activation::relu:
      return std::max(v, 0.0f);
    case Activation::gelu_tanh: {
      const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
      return 0.5f * v * (1.0f + std::tanh(u));
    }
    case Activation::gelu_erf:
      return 0.5f * v * (1.0f + std::erf(v * 0.7071067811865476f));
    case Activation::silu:
      return v / (1.0f + std::exp(-v));
  }
  return v;
}

void linear_f32(const float* x, int64_t tokens, const float* w, int64_t out, int64_t in,
                const Epilogue& e, float* y) {
  require_io(x, tokens, y, "linear_f32");
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out; ++o) {
      float acc = 0.0f;
      for (int64_t i = 0; i < in; ++i) acc += x[t * in + i] * w[o * in + i];
      y[t * out + o] = finish(acc, t, o, out, e);
    }
}

void linear_bsr_f32(const float* x, int64_t tokens, const Bsr& w, const Epilogue& e, float* y) {
  require_io(x, tokens, y, "linear_bsr_f32");
  const int64_t R = w.block.rows, C = w.block.cols;
  std::vector<float> acc(static_cast<size_t>(w.rows));
  for (int64_t t = 0; t < tokens; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t br = 0; br < w.block_rows(); ++br)
      for (int64_t b = w.row_ptr[br]; b < w.row_ptr[br + 1]; ++b)
        for (int64_t i = 0; i < R && br * R + i < w.rows; ++i)
          for (int64_t j = 0; j < C; ++j) {
            const int64_t c = w.col_idx[b] * C + j;
            if (c < w.cols) acc[br * R + i] += w.values[(b * R + i) * C + j] * x[t * w.cols + c];
          }
    for (int64_t o = 0; o < w.rows; ++o) y[t * w.rows + o] = finish(acc[o], t, o, w.rows, e);
  }
}

void linear_nm_f32(const float* x, int64_t tokens, const NmMatrix& w, const Epilogue& e, float* y) {
  require_io(x, tokens, y, "linear_nm_f32");
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < w.rows; ++o) {
      float acc = 0.0f;
      int64_t slot = o * w.groups_per_row() * w.n;
      for (int64_t g = 0; g < w.groups_per_row(); ++g)
        for (int k = 0; k < w.n; ++k, ++slot) {
          const int64_t c = g * w.m + w.index_of(slot);
          if (c < w.cols) acc += w.values[slot] * x[t * w.cols + c];
        }
      y[t * w.rows + o] = finish(acc, t, o, w.rows, e);
    }
}

void linear_bf16(const float* x, int64_t tokens, const uint16_t* w_bf16, int64_t out, int64_t in,
                 const Epilogue& e, float* y) {
  require_io(x, tokens, y, "linear_bf16");
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out; ++o) {
      float acc = 0.0f;
      for (int64_t i = 0; i < in; ++i)
        acc += bf16_round(x[t * in + i]) * from_bf16(w_bf16[o * in + i]);
      y[t * out + o] = finish(acc, t, o, out, e);
    }
}

namespace {

// A bf16 reference is the fp32 one on bf16-rounded copies of x and of the weight's values.
template <typename Weight, typename Fp32Kernel>
void on_bf16_rounded(const float* x, int64_t tokens, const Weight& w, const Epilogue& e, float* y,
                     const char* what, Fp32Kernel fp32_kernel) {
  require_io(x, tokens, y, what);
  Weight rounded = w;
  for (float& v : rounded.values) v = bf16_round(v);
  std::vector<float> xr(x, x + tokens * w.cols);
  for (float& v : xr) v = bf16_round(v);
  fp32_kernel(xr.data(), tokens, rounded, e, y);
}

}  // namespace

void linear_bsr_bf16(const float* x, int64_t tokens, const Bsr& w, const Epilogue& e, float* y) {
  on_bf16_rounded(x, tokens, w, e, y, "linear_bsr_bf16", linear_bsr_f32);
}

void linear_nm_bf16(const float* x, int64_t tokens, const NmMatrix& w, const Epilogue& e,
                    float* y) {
  on_bf16_rounded(x, tokens, w, e, y, "linear_nm_bf16", linear_nm_f32);
}

void linear_int8(const int8_t* xq, const float* x_scale, int64_t tokens, const int8_t* wq,
                 const float* w_scale, int64_t out, int64_t in, const Epilogue& e, float* y) {
  require_io(xq, tokens, y, "linear_int8");
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < out; ++o) {
      int32_t acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += int32_t{xq[t * in + i]} * int32_t{wq[o * in + i]};
      const float v = static_cast<float>(acc) * x_scale[t];
      y[t * out + o] = finish(v * w_scale[o], t, o, out, e);
    }
}

void quantize_rows(const float* v, int64_t rows, int64_t cols, int8_t* q, float* scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float a = std::fabs(v[r * cols + c]);
      if (!(a <= std::numeric_limits<float>::max()))
        throw InvalidArgument("quantize: row " + std::to_string(r) + ", column " +
                              std::to_string(c) + " is not finite");
      amax = std::max(amax, a);
    }
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    if (!(inv <= std::numeric_limits<float>::max())) {
      // max |v| < 127 / FLT_MAX: the row is treated as zero rather than saturating.
      inv = 0.0f;
      amax = 0.0f;
    }
    scale[r] = amax / 127.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float s = std::nearbyint(v[r * cols + c] * inv);
      q[r * cols + c] = static_cast<int8_t>(std::clamp(s, -127.0f, 127.0f));
    }
  }
}

int8_t requantize(float y, float inv_y_scale) {
  const float s = std::nearbyint(y * inv_y_scale);
  return static_cast<int8_t>(std::clamp(s, -128.0f, 127.0f));
}

}  // namespace sparq::sparse
