#include "sparse/amx_16x1_pack.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "sparse/bf16.hpp"
#include "sparse/bf16_block_pack.hpp"
#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::sparse {

int64_t Amx16x1Weights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + tiles.size() +
                              offsets.size() * sizeof(uint32_t) + steps.size() +
                              (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

namespace {

void require_shape(const char* what, int64_t out, int64_t in) {
  require(out > 0 && in > 0, [&] {
    return std::string(what) + ": shape must be positive, got " + std::to_string(out) + " x " +
           std::to_string(in);
  });
  // Byte offsets are u32, and int8 sums stay below 2^31: 255 * 128 * in < 2^31.
  require(in <= (int64_t{1} << 16), [&] {
    return std::string(what) + ": in_features " + std::to_string(in) + " exceeds 65536";
  });
}

// The layout for weights of `element_bytes` (1: s8, 2: bf16) whose non-zeros `nonzero(r, i)`
// tells; put(tile, r, at, row, column) writes one weight into a group's tile.
template <typename NonZero, typename Put>
Amx16x1Weights pack(int64_t out, int64_t in, int element_bytes, int64_t column_bytes,
                    const float* bias, NonZero nonzero, Put put) {
  Amx16x1Weights w;
  w.out = out;
  w.in = in;
  w.group_columns = 64 / element_bytes;
  const int per_step = 4 / element_bytes;  // columns in one B tile row (a dword per token)
  const int64_t blocks = ceil_div(out, kAmxBlockRows);
  w.bias.assign(static_cast<size_t>(blocks * kAmxBlockRows), 0.0f);
  if (bias) std::copy(bias, bias + out, w.bias.begin());
  w.group_begin.assign(1, 0);
  std::vector<int64_t> columns;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t r0 = b * kAmxBlockRows, r1 = std::min(out, r0 + kAmxBlockRows);
    columns.clear();
    for (int64_t i = 0; i < in; ++i)
      for (int64_t r = r0; r < r1; ++r)
        if (nonzero(r, i)) {
          columns.push_back(i);
          break;
        }
    const auto count = static_cast<int64_t>(columns.size());
    w.nonzero_columns += count;
    const int64_t groups = ceil_div(count, w.group_columns);
    const auto first = static_cast<size_t>(w.group_begin.back());
    w.tiles.resize((first + static_cast<size_t>(groups)) * kAmxTileBytes, 0);
    w.offsets.resize((first + static_cast<size_t>(groups)) * static_cast<size_t>(w.group_columns));
    for (int64_t k = 0; k < groups * w.group_columns; ++k) {
      const size_t g = first + static_cast<size_t>(k / w.group_columns);
      const int64_t at = k % w.group_columns;
      const bool real = k < count;
      const int64_t column = real ? columns[static_cast<size_t>(k)] : columns[0];
      w.offsets[g * static_cast<size_t>(w.group_columns) + static_cast<size_t>(at)] =
          static_cast<uint32_t>(column * column_bytes);
      if (!real) continue;
      uint8_t* tile = w.tiles.data() + g * kAmxTileBytes;
      for (int64_t r = r0; r < r1; ++r) put(tile, r - r0, at, r, column);
    }
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t real = std::min<int64_t>(w.group_columns, count - g * w.group_columns);
      w.steps.push_back(static_cast<uint8_t>(ceil_div(real, per_step)));
    }
    w.group_begin.push_back(static_cast<int64_t>(first) + groups);
  }
  return w;
}

// Calls f(row, column, tile, r, at) for every weight slot of every group.
template <typename F>
void for_each_slot(const Amx16x1Weights& w, F f) {
  for (int64_t b = 0; b < w.blocks(); ++b)
    for (int64_t g = w.group_begin[b]; g < w.group_begin[b + 1]; ++g)
      for (int64_t at = 0; at < w.group_columns; ++at) {
        const int64_t column = w.offsets[g * w.group_columns + at] /
                               (w.group_columns == 64 ? kChunkTokens : kBf16ColumnBytes);
        for (int64_t r = 0; r < kAmxBlockRows && b * kAmxBlockRows + r < w.out; ++r)
          f(b * kAmxBlockRows + r, column, w.tiles.data() + g * kAmxTileBytes, r, at);
      }
}

}  // namespace

Amx16x1Weights pack_int8_16x1_amx(const int8_t* wq, const float* w_scale, const float* bias,
                                  int64_t out, int64_t in) {
  require(wq != nullptr && w_scale != nullptr, "pack_int8_16x1_amx: null weight or scales");
  require_shape("pack_int8_16x1_amx", out, in);
  Amx16x1Weights w = pack(
      out, in, 1, kChunkTokens, bias, [&](int64_t r, int64_t i) { return wq[r * in + i] != 0; },
      [&](uint8_t* tile, int64_t r, int64_t at, int64_t row, int64_t column) {
        tile[r * 64 + at] = static_cast<uint8_t>(wq[row * in + column]);
      });
  const auto rows = static_cast<size_t>(w.blocks() * kAmxBlockRows);
  w.scales.assign(rows, 0.0f);
  w.compensation.assign(rows, 0);
  for (int64_t r = 0; r < out; ++r) {
    w.scales[r] = w_scale[r];
    int32_t sum = 0;
    for (int64_t i = 0; i < in; ++i) sum += wq[r * in + i];
    w.compensation[r] = 128 * sum;
  }
  return w;
}

Amx16x1Weights pack_bf16_16x1_amx(const float* weight, const float* bias, int64_t out, int64_t in) {
  require(weight != nullptr, "pack_bf16_16x1_amx: null weight");
  require_shape("pack_bf16_16x1_amx", out, in);
  return pack(
      out, in, 2, kBf16ColumnBytes, bias,
      [&](int64_t r, int64_t i) { return to_bf16(weight[r * in + i]) != 0; },
      [&](uint8_t* tile, int64_t r, int64_t at, int64_t row, int64_t column) {
        const uint16_t v = to_bf16(weight[row * in + column]);
        std::memcpy(tile + r * 64 + 2 * at, &v, sizeof v);
      });
}

std::vector<int8_t> to_dense_int8(const Amx16x1Weights& w) {
  std::vector<int8_t> dense(static_cast<size_t>(w.out * w.in), 0);
  for_each_slot(w, [&](int64_t row, int64_t column, const uint8_t* tile, int64_t r, int64_t at) {
    const auto v = static_cast<int8_t>(tile[r * 64 + at]);
    if (v != 0) dense[row * w.in + column] = v;
  });
  return dense;
}

std::vector<float> to_dense_bf16(const Amx16x1Weights& w) {
  std::vector<float> dense(static_cast<size_t>(w.out * w.in), 0.0f);
  for_each_slot(w, [&](int64_t row, int64_t column, const uint8_t* tile, int64_t r, int64_t at) {
    uint16_t v;
    std::memcpy(&v, tile + r * 64 + 2 * at, sizeof v);
    if (v != 0) dense[row * w.in + column] = from_bf16(v);
  });
  return dense;
}

}  // namespace sparq::sparse
