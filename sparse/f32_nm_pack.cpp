#include "sparse/f32_nm_pack.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "sparse/stats.hpp"

namespace sparq::sparse {

int64_t F32NmWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              bias.size() * sizeof(float));
}

F32NmWeights pack_f32_2of4(const float* w, const float* bias, int64_t out, int64_t in,
                           int slice_tokens) {
  require(w != nullptr, "pack_f32_2of4: weight must not be null");
  require(out > 0 && in > 0, "pack_f32_2of4: out and in must be positive");
  require(slice_tokens > 0 && slice_tokens * 3 <= 255,
          "pack_f32_2of4: one-byte offsets need slice_tokens <= 85");
  const std::span<const float> all(w, static_cast<size_t>(out * in));
  if (auto v = first_n_m_violation(all, out, in, 2, 4))
    throw InvalidArgument("pack_f32_2of4: the weight is not 2:4: " + v->describe(2, 4));
  const int64_t groups = ceil_div(out, 4), blocks = ceil_div(in, 4);
  const int column_bytes = slice_tokens * 4;
  F32NmWeights p;
  p.out = out;
  p.in = in;
  p.slice_tokens = slice_tokens;
  p.blocks_per_group = blocks;
  p.bias.assign(static_cast<size_t>(groups * 4), 0.0f);
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  p.entries.assign(static_cast<size_t>(groups * blocks * kF32NmEntryBytes), 0);
  for (int64_t g = 0; g <= groups; ++g) p.group_begin.push_back(g * blocks);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t k = 0; k < blocks; ++k) {
      uint8_t* entry = p.entries.data() + (g * blocks + k) * kF32NmEntryBytes;
      for (int r = 0; r < 4 && g * 4 + r < out; ++r) {
        int kept = 0;
        for (int i = 0; i < 4 && k * 4 + i < in; ++i) {
          const float v = w[(g * 4 + r) * in + k * 4 + i];
          if (v == 0.0f) continue;
          entry[2 * r + kept] = static_cast<uint8_t>(i * column_bytes / 4);
          std::memcpy(entry + 8 + 8 * r + 4 * kept, &v, 4);
          ++kept;
        }
      }
    }
  // Kernels may read a few entries ahead (to prefetch): keep those reads inside the buffer.
  p.entries.resize(p.entries.size() + 8 * kF32NmEntryBytes, 0);
  return p;
}

std::vector<float> to_dense(const F32NmWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  const int column_bytes = p.slice_tokens * 4;
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t k = 0; k < p.blocks_per_group; ++k) {
      const uint8_t* entry = p.entries.data() + (g * p.blocks_per_group + k) * kF32NmEntryBytes;
      for (int r = 0; r < 4 && g * 4 + r < p.out; ++r)
        for (int j = 0; j < 2; ++j) {
          float v;
          std::memcpy(&v, entry + 8 + 8 * r + 4 * j, 4);
          if (v != 0.0f) w[(g * 4 + r) * p.in + k * 4 + entry[2 * r + j] * 4 / column_bytes] = v;
        }
    }
  return w;
}

}  // namespace sparq::sparse
