#include "sparse/int8_block_pack.hpp"

#include <cstring>
#include <limits>

#include "sparse/checks.hpp"

namespace sparq::sparse {

int cols_per_entry(Int8Layout layout) { return layout == Int8Layout::pairs_i16 ? 2 : 4; }
int entry_bytes(Int8Layout layout) { return layout == Int8Layout::pairs_i16 ? 24 : 32; }

int chunk_token(Int8Layout layout, int slot) {
  if (layout == Int8Layout::pairs_i16) {
    // Per 16 tokens, vpunpck{l,h}wd of two ymm give lanes {0-3, 8-11} and {4-7, 12-15}.
    const int sub = slot / 16, half = (slot % 16) / 8, lane = slot % 8;
    return sub * 16 + (lane < 4 ? 4 * half + lane : 8 + 4 * half + (lane - 4));
  }
  // Per 128-bit lane L, bytes->words->dwords unpacking gives vector q the tokens 16L + 4q + i.
  const int q = slot / 16, lane128 = (slot % 16) / 4, i = slot % 4;
  return 16 * lane128 + 4 * q + i;
}

int64_t Int8BlockWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

Int8BlockWeights pack_int8_4x1(const int8_t* wq, const float* w_scale, const float* bias,
                               int64_t out, int64_t in, Int8Layout layout) {
  require(wq != nullptr && w_scale != nullptr, "pack_int8_4x1: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_4x1: out and in must be positive");
  require(in * x_column_bytes(layout) <= std::numeric_limits<uint32_t>::max(),
          "pack_int8_4x1: in_features too large for 32-bit column offsets");
  const int per_entry = cols_per_entry(layout), bytes = entry_bytes(layout);
  const int64_t groups = ceil_div(out, 4);
  Int8BlockWeights w;
  w.layout = layout;
  w.out = out;
  w.in = in;
  w.group_begin.push_back(0);
  w.scales.assign(static_cast<size_t>(groups * 4), 0.0f);
  w.bias.assign(static_cast<size_t>(groups * 4), 0.0f);
  w.compensation.assign(static_cast<size_t>(groups * 4), 0);
  for (int64_t r = 0; r < out; ++r) {
    w.scales[r] = w_scale[r];
    w.bias[r] = bias ? bias[r] : 0.0f;
    if (layout == Int8Layout::quads_u8) {
      int64_t sum = 0;
      for (int64_t i = 0; i < in; ++i) sum += wq[r * in + i];
      // int32 like the accumulator it is subtracted from (in <= 131072 keeps it in range).
      w.compensation[r] = static_cast<int32_t>(128 * sum);
    }
  }
  auto weight = [&](int64_t r, int64_t c) -> int8_t {
    return r < out ? wq[r * in + c] : int8_t{0};
  };
  std::vector<int64_t> cols;
  for (int64_t g = 0; g < groups; ++g) {
    cols.clear();
    for (int64_t c = 0; c < in; ++c)
      for (int r = 0; r < 4; ++r)
        if (weight(g * 4 + r, c) != 0) {
          cols.push_back(c);
          break;
        }
    w.nonzero_blocks += static_cast<int64_t>(cols.size());
    for (size_t first = 0; first < cols.size(); first += per_entry) {
      uint8_t entry[32] = {};
      for (int j = 0; j < per_entry; ++j) {
        const bool real = first + j < cols.size();
        const int64_t c = real ? cols[first + j] : cols[first];
        const auto offset = static_cast<uint32_t>(c * x_column_bytes(layout));
        std::memcpy(entry + 4 * j, &offset, 4);
        for (int r = 0; r < 4; ++r) {
          const int8_t v = real ? weight(g * 4 + r, c) : int8_t{0};
          if (layout == Int8Layout::pairs_i16) {
            const int16_t v16 = v;
            std::memcpy(entry + 8 + 4 * r + 2 * j, &v16, 2);
          } else {
            entry[16 + 4 * r + j] = static_cast<uint8_t>(v);
          }
        }
      }
      w.entries.insert(w.entries.end(), entry, entry + bytes);
    }
    w.group_begin.push_back(static_cast<int64_t>(w.entries.size()) / bytes);
  }
  // Kernels may read the column offsets of entries a few places ahead (to prefetch them): zero
  // entries past the end keep those reads inside the buffer.
  w.entries.resize(w.entries.size() + static_cast<size_t>(kEntryReadAhead * bytes), 0);
  return w;
}

std::vector<int8_t> to_dense(const Int8BlockWeights& w) {
  std::vector<int8_t> wq(static_cast<size_t>(w.out * w.in), 0);
  const int per_entry = cols_per_entry(w.layout), bytes = entry_bytes(w.layout);
  for (int64_t g = 0; g < w.groups(); ++g)
    for (int64_t e = w.group_begin[g]; e < w.group_begin[g + 1]; ++e) {
      const uint8_t* entry = w.entries.data() + e * bytes;
      for (int j = 0; j < per_entry; ++j) {
        uint32_t offset;
        std::memcpy(&offset, entry + 4 * j, 4);
        const int64_t c = offset / x_column_bytes(w.layout);
        for (int r = 0; r < 4 && g * 4 + r < w.out; ++r) {
          int8_t v;
          if (w.layout == Int8Layout::pairs_i16) {
            int16_t v16;
            std::memcpy(&v16, entry + 8 + 4 * r + 2 * j, 2);
            v = static_cast<int8_t>(v16);
          } else {
            v = static_cast<int8_t>(entry[16 + 4 * r + j]);
          }
          if (v != 0) wq[(g * 4 + r) * w.in + c] = v;
        }
      }
    }
  return wq;
}

void layout_activations(const int8_t* xq, const float* x_scale, int64_t tokens, int64_t in,
                        Int8Layout layout, uint8_t* x, float* scales) {
  const int64_t chunks = ceil_div(tokens, kChunkTokens);
  const int elem = x_element_bytes(layout);
  std::memset(x, layout == Int8Layout::quads_u8 ? 128 : 0,
              static_cast<size_t>(chunks * in * kChunkTokens * elem));
  for (int64_t ch = 0; ch < chunks; ++ch)
    for (int slot = 0; slot < kChunkTokens; ++slot) {
      const int64_t t = ch * kChunkTokens + chunk_token(layout, slot);
      scales[ch * kChunkTokens + slot] = t < tokens ? x_scale[t] : 0.0f;
    }
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < in; ++i) {
      uint8_t* dst = x + x_offset(layout, in, t, i);
      const int8_t q = xq[t * in + i];
      if (layout == Int8Layout::pairs_i16) {
        const int16_t q16 = q;
        std::memcpy(dst, &q16, 2);
      } else {
        *dst = static_cast<uint8_t>(q + 128);
      }
    }
}

}  // namespace sparq::sparse
