#include "sparse/f32_decode_pack.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "sparq/error.hpp"
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

F32DecodeWeights pack_f32_2of4_decode(const float* w, const float* bias, int64_t out, int64_t in,
                                      bool bf16) {
  require(w != nullptr, "pack_f32_2of4_decode: weight must not be null");
  require(out > 0 && in > 0 && in <= (int64_t{1} << 30),
          "pack_f32_2of4_decode: out and in must be positive (in <= 2^30)");
  const int64_t groups = ceil_div(out, kF32DecodeRows), blocks = ceil_div(in, 4);
  F32DecodeWeights p;
  p.bf16 = bf16;
  p.two_of_four = true;
  p.out = out;
  p.in = in;
  p.bias.assign(static_cast<size_t>(groups * kF32DecodeRows), 0.0f);
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  const int bytes = p.entry_bytes(), value_bytes = bf16 ? 2 : 4;
  p.entries.assign(static_cast<size_t>(groups * blocks * bytes), 0);
  for (int64_t g = 0; g <= groups; ++g) p.group_begin.push_back(g * blocks);
  for (int64_t r = 0; r < out; ++r) {
    const int64_t g = r / kF32DecodeRows, lane = r % kF32DecodeRows;
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* entry = p.entries.data() + (g * blocks + b) * bytes;
      int kept = 0;
      for (int i = 0; i < 4 && 4 * b + i < in; ++i) {
        const float v = w[r * in + 4 * b + i];
        if (v == 0.0f) continue;
        if (kept == 2)
          throw InvalidArgument("pack_f32_2of4_decode: the weight is not 2:4: row " +
                                std::to_string(r) + ", columns " + std::to_string(4 * b) + ".." +
                                std::to_string(4 * b + 3) + " hold more than 2 non-zeros");
        uint8_t* slot = entry + (kept * kF32DecodeRows + lane) * value_bytes;
        if (bf16) {
          const uint16_t h = to_bf16(v);
          std::memcpy(slot, &h, 2);
        } else {
          std::memcpy(slot, &v, 4);
        }
        entry[2 * kF32DecodeRows * value_bytes + lane] |= static_cast<uint8_t>(i << (2 * kept));
        ++kept;
      }
    }
  }
  p.nonzero_blocks = groups * blocks;  // every 16 x 4 block has an entry
  return p;
}

std::vector<float> to_dense(const F32DecodeWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  const int bytes = p.entry_bytes();
  if (p.two_of_four) {
    const int value_bytes = p.bf16 ? 2 : 4;
    const int64_t blocks = ceil_div(p.in, 4);
    for (int64_t r = 0; r < p.out; ++r)
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t g = r / kF32DecodeRows, lane = r % kF32DecodeRows;
        const uint8_t* entry = p.entries.data() + (g * blocks + b) * bytes;
        const uint8_t positions = entry[2 * kF32DecodeRows * value_bytes + lane];
        for (int j = 0; j < 2; ++j) {
          const uint8_t* slot = entry + (j * kF32DecodeRows + lane) * value_bytes;
          float v;
          if (p.bf16) {
            uint16_t h;
            std::memcpy(&h, slot, 2);
            v = from_bf16(h);
          } else {
            std::memcpy(&v, slot, 4);
          }
          if (v != 0.0f) w[r * p.in + 4 * b + (positions >> (2 * j) & 3)] = v;
        }
      }
    return w;
  }
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
