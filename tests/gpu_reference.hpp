// The CPU oracle for sparq's GPU layers: what fp16 / bf16 tensor cores and the int8 path compute.
#pragma once

#include <cstdint>
#include <vector>

#include "sparq/types.hpp"
#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"
#include "sparse/reference.hpp"

namespace sparq::test {

// x and w rounded to the layer's 16-bit type, products in fp32: what the tensor cores compute.
inline float round_to(float v, DType dtype) {
  if (dtype == DType::bf16) return sparse::from_bf16(sparse::to_bf16(v));
  return sparse::from_f16(sparse::to_f16(v));
}

inline std::vector<float> gpu_reference(const std::vector<float>& x, int64_t tokens,
                                        const std::vector<float>& w, int64_t out, int64_t in,
                                        const std::vector<float>& bias, Activation act,
                                        const std::vector<float>& residual, DType dtype) {
  std::vector<float> y(static_cast<size_t>(tokens * out));
  std::vector<float> x16(x.size());
  for (size_t i = 0; i < x.size(); ++i) x16[i] = round_to(x[i], DType::f16);
  const sparse::Epilogue epi{bias.data(), act, residual.empty() ? nullptr : residual.data()};
  if (dtype == DType::int8) {
    // The GPU quantizes the fp16 activations per token, the weight per output channel.
    std::vector<int8_t> xq(x.size()), wq(w.size());
    std::vector<float> xs(static_cast<size_t>(tokens)), ws(static_cast<size_t>(out));
    sparse::quantize_rows(x16.data(), tokens, in, xq.data(), xs.data());
    sparse::quantize_rows(w.data(), out, in, wq.data(), ws.data());
    sparse::linear_int8(xq.data(), xs.data(), tokens, wq.data(), ws.data(), out, in, epi, y.data());
    return y;
  }
  std::vector<float> xr(x.size()), wr(w.size());
  for (size_t i = 0; i < x.size(); ++i) xr[i] = round_to(x[i], dtype);
  for (size_t i = 0; i < w.size(); ++i) wr[i] = round_to(w[i], dtype);
  sparse::linear_f32(xr.data(), tokens, wr.data(), out, in, epi, y.data());
  return y;
}

}  // namespace sparq::test
