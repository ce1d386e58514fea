// Dynamic int8 quantization of fp32 activations straight into an int8 kernel's layout:
// symmetric, one scale per token (scale = max|x[t]| / 127), rounding as sparse::quantize_rows.
#pragma once

#include <cstdint>

#include "sparse/int8_block_pack.hpp"

namespace sparq {

// Bytes of the activation buffer and floats of the scale buffer for `tokens` x `in`.
int64_t activation_bytes(sparse::Int8Layout layout, int64_t tokens, int64_t in);
int64_t activation_scale_count(int64_t tokens);

// x: fp32 [tokens x in] -> buffers sized as above. Uses AVX2 when the CPU has it.
void quantize_activations(const float* x, int64_t tokens, int64_t in, sparse::Int8Layout layout,
                          uint8_t* xq, float* scales);

// Row-major symmetric quantization, exactly sparse::quantize_rows (InvalidArgument on a value
// that is not finite), with AVX2 when the CPU has it.
void quantize_rows(const float* x, int64_t rows, int64_t cols, int8_t* q, float* scale);

namespace detail {
void quantize_rows_avx2(const float* x, int64_t rows, int64_t cols, int8_t* q, float* scale);
void quantize_activations_portable(const float* x, int64_t tokens, int64_t in,
                                   sparse::Int8Layout layout, uint8_t* xq, float* scales);
void quantize_activations_avx2(const float* x, int64_t tokens, int64_t in,
                               sparse::Int8Layout layout, uint8_t* xq, float* scales);
// quads_u8 only.
void quantize_activations_avx512(const float* x, int64_t tokens, int64_t in, uint8_t* xq,
                                 float* scales);
}  // namespace detail

}  // namespace sparq
