#include "sparse/f32_decode_pack.hpp"

#include <algorithm>
#include <cstring>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"

namespace sparq::sparse {

int64_t F32DecodeWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              bias.size() * sizeof(float));
}

F32DecodeWeights pack_f32_decode(const float* w, const float* bias, int64_t out, int64_t in,
                                 bool bf16) {
  require(w != nullptr, "pack_f32_decode: weight must not be null");
  require(out > 0 && in > 0 && in <= (int64_t{1} << 30),
          "pack_f32_decode: out and in must be positive (in <= 2^30)");
  const int64_t groups = ceil_div(out, kF32DecodeRows);
  F32DecodeWeights p;
  p.bf16 = bf16;
  p.out = out;
  p.in = in;
  p.group_begin.push_back(0);
  p.bias.assign(static_cast<size_t>(groups * kF32DecodeRows), 0.0f);
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  const int bytes = p.entry_bytes();
  std::vector<uint8_t> entry(static_cast<size_t>(bytes));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = g * kF32DecodeRows, rows = std::min<int64_t>(kF32DecodeRows, out - r0);
    for (int64_t c = 0; c < in; ++c) {
      bool nonzero = false;
      for (int64_t r = 0; r < rows; ++r) nonzero |= w[(r0 + r) * in + c] != 0.0f;
      if (!nonzero) continue;
      std::fill(entry.begin(), entry.end(), 0);
      const auto column = static_cast<uint32_t>(c);
      std::memcpy(entry.data(), &column, 4);
      for (int64_t r = 0; r < rows; ++r) {
        const float v = w[(r0 + r) * in + c];
        if (bf16) {
          const uint16_t h = to_bf16(v);
          std::memcpy(entry.data() + 4 + 2 * r, &h, 2);
        } else {
          std::memcpy(entry.data() + 4 + 4 * r, &v, 4);
        }
      }
      p.entries.insert(p.entries.end(), entry.begin(), entry.end());
      ++p.nonzero_blocks;
    }
    p.group_begin.push_back(static_cast<int64_t>(p.entries.size()) / bytes);
  }
  return p;
}

std::vector<float> to_dense(const F32DecodeWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  const int bytes = p.entry_bytes();
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t e = p.group_begin[g]; e < p.group_begin[g + 1]; ++e) {
      const uint8_t* entry = p.entries.data() + e * bytes;
      uint32_t c;
      std::memcpy(&c, entry, 4);
      for (int64_t r = 0; r < kF32DecodeRows && g * kF32DecodeRows + r < p.out; ++r) {
        float v;
        if (p.bf16) {
          uint16_t h;
          std::memcpy(&h, entry + 4 + 2 * r, 2);
          v = from_bf16(h);
        } else {
          std::memcpy(&v, entry + 4 + 4 * r, 4);
        }
        if (v != 0.0f) w[(g * kF32DecodeRows + r) * p.in + c] = v;
      }
    }
  return w;
}

}  // namespace sparq::sparse
