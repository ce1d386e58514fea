#include "sparse/int8_amx_pack.hpp"

#include <algorithm>
#include <string>

#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::sparse {

int64_t Int8Amx16x1Weights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + tiles.size() +
                              offsets.size() * sizeof(uint32_t) + quads.size() +
                              (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

Int8Amx16x1Weights pack_int8_16x1_amx(const int8_t* wq, const float* w_scale, const float* bias,
                                      int64_t out, int64_t in) {
  require(wq != nullptr && w_scale != nullptr, "pack_int8_16x1_amx: null weight or scales");
  require(out > 0 && in > 0, [&] {
    return "pack_int8_16x1_amx: shape must be positive, got " + std::to_string(out) + " x " +
           std::to_string(in);
  });
  // Byte offsets are u32 and the int32 sums must not overflow: 255 * 127 * in < 2^31.
  require(in <= (int64_t{1} << 16), [&] {
    return "pack_int8_16x1_amx: in_features " + std::to_string(in) + " exceeds 65536";
  });
  Int8Amx16x1Weights w;
  w.out = out;
  w.in = in;
  const int64_t blocks = ceil_div(out, kAmxBlockRows), rows = blocks * kAmxBlockRows;
  w.scales.assign(static_cast<size_t>(rows), 0.0f);
  w.bias.assign(static_cast<size_t>(rows), 0.0f);
  w.compensation.assign(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < out; ++r) {
    w.scales[r] = w_scale[r];
    if (bias) w.bias[r] = bias[r];
    int32_t sum = 0;
    for (int64_t i = 0; i < in; ++i) sum += wq[r * in + i];
    w.compensation[r] = 128 * sum;
  }
  w.group_begin.assign(1, 0);
  std::vector<int64_t> columns;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kAmxBlockRows, r1 = std::min(out, r0 + kAmxBlockRows);
    columns.clear();
    for (int64_t i = 0; i < in; ++i)
      for (int64_t r = r0; r < r1; ++r)
        if (wq[r * in + i] != 0) {
          columns.push_back(i);
          break;
        }
    w.nonzero_columns += static_cast<int64_t>(columns.size());
    const int64_t groups = ceil_div(static_cast<int64_t>(columns.size()), kAmxGroupColumns);
    const size_t first = static_cast<size_t>(w.group_begin.back());
    w.tiles.resize((first + static_cast<size_t>(groups)) * kAmxTileBytes, 0);
    w.offsets.resize((first + static_cast<size_t>(groups)) * kAmxGroupColumns, 0);
    for (int64_t k = 0; k < groups * kAmxGroupColumns; ++k) {
      const size_t g = first + static_cast<size_t>(k / kAmxGroupColumns);
      const int64_t at = k % kAmxGroupColumns;
      const bool real = k < static_cast<int64_t>(columns.size());
      const int64_t column = real ? columns[static_cast<size_t>(k)] : columns[0];
      w.offsets[g * kAmxGroupColumns + at] = static_cast<uint32_t>(column * kChunkTokens);
      if (!real) continue;
      for (int64_t r = r0; r < r1; ++r)
        w.tiles[g * kAmxTileBytes + (r - r0) * kAmxGroupColumns + at] = wq[r * in + column];
    }
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t real = std::min<int64_t>(
          kAmxGroupColumns, static_cast<int64_t>(columns.size()) - g * kAmxGroupColumns);
      w.quads.push_back(static_cast<uint8_t>(ceil_div(real, 4)));
    }
    w.group_begin.push_back(static_cast<int64_t>(first) + groups);
  }
  return w;
}

std::vector<int8_t> to_dense(const Int8Amx16x1Weights& w) {
  std::vector<int8_t> dense(static_cast<size_t>(w.out * w.in), 0);
  for (int64_t b = 0; b < w.blocks(); ++b)
    for (int64_t g = w.group_begin[b]; g < w.group_begin[b + 1]; ++g)
      for (int64_t at = 0; at < kAmxGroupColumns; ++at) {
        const int64_t column = w.offsets[g * kAmxGroupColumns + at] / kChunkTokens;
        for (int64_t r = 0; r < kAmxBlockRows; ++r) {
          const int8_t v = w.tiles[g * kAmxTileBytes + r * kAmxGroupColumns + at];
          const int64_t row = b * kAmxBlockRows + r;
          if (v != 0) dense[row * w.in + column] = v;
        }
      }
  return dense;
}

}  // namespace sparq::sparse
