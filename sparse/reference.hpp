// Plain C++ reference linear layers: y[t][o] = act(sum_i x[t][i] * w[o][i] + bias[o]) + residual.
// They are the oracle every fast kernel is tested against: simple loops, no tricks.
#pragma once

#include <cstdint>
#include <span>

#include "sparq/types.hpp"
#include "sparse/bsr.hpp"
#include "sparse/nm.hpp"

namespace sparq::sparse {

// What follows the matrix product, in this order: bias, activation, residual add.
struct Epilogue {
  const float* bias = nullptr;  // [out] or null
  Activation activation = Activation::none;
  const float* residual = nullptr;     // [tokens x out] or null: the tensor operand
  OperandOp operand = OperandOp::add;  // how it joins: added, or multiplied (a gated unit)
};

float activate(float v, Activation activation);

// fp32. x: [tokens x in], w: [out x in], y: [tokens x out].
void linear_f32(const float* x, int64_t tokens, const float* w, int64_t out, int64_t in,
                const Epilogue& epilogue, float* y);
void linear_bsr_f32(const float* x, int64_t tokens, const Bsr& w, const Epilogue& epilogue,
                    float* y);
void linear_nm_f32(const float* x, int64_t tokens, const NmMatrix& w, const Epilogue& epilogue,
                   float* y);

// bf16: x and w rounded to bf16, products accumulated in fp32 (as vdpbf16ps does).
void linear_bf16(const float* x, int64_t tokens, const uint16_t* w_bf16, int64_t out, int64_t in,
                 const Epilogue& epilogue, float* y);
void linear_bsr_bf16(const float* x, int64_t tokens, const Bsr& w, const Epilogue& epilogue,
                     float* y);
void linear_nm_bf16(const float* x, int64_t tokens, const NmMatrix& w, const Epilogue& epilogue,
                    float* y);

// int8 with scales: xq [tokens x in] s8 with one scale per token, wq [out x in] s8 with one scale
// per output channel; int32 accumulation, then float(acc) * x_scale * w_scale.
void linear_int8(const int8_t* xq, const float* x_scale, int64_t tokens, const int8_t* wq,
                 const float* w_scale, int64_t out, int64_t in, const Epilogue& epilogue, float* y);

// Symmetric int8 quantization with the rounding all sparq kernels use:
// scale = max|v| / 127, q = round_half_even(v * (127 / max|v|)); an all-zero row gets scale 0.
// A NaN or infinite value throws InvalidArgument naming its row and column.
void quantize_rows(const float* v, int64_t rows, int64_t cols, int8_t* q, float* scale);

// Requantized output: saturate(round_half_even(y * (1 / y_scale))) to [-128, 127].
int8_t requantize(float y, float inv_y_scale);

}  // namespace sparq::sparse
