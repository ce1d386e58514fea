#include "sparse/bf16_block_pack.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::sparse {

int bf16_slice_token(int slot) {
  // Column half h (one zmm of 32 tokens), 128-bit lane L, unpack half hi (low/high 4 words of the
  // lane), word j: vpunpck{l,h}wd of half h gives pair vector q = 2h + hi.
  const int h = slot / 32, lane = (slot % 32) / 8, hi = (slot % 8) / 4, j = slot % 4;
  return 16 * lane + 4 * (2 * h + hi) + j;
}

int64_t Bf16BlockWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              bias.size() * sizeof(float));
}

Bf16BlockWeights pack_bf16_4x1(const float* w, const float* bias, int64_t out, int64_t in) {
  require(w != nullptr, "pack_bf16_4x1: weight must not be null");
  require(out > 0 && in > 0, "pack_bf16_4x1: out and in must be positive");
  require(in * kBf16ColumnBytes <= std::numeric_limits<uint32_t>::max(),
          "pack_bf16_4x1: in_features too large for 32-bit column offsets");
  const int64_t groups = ceil_div(out, 4);
  Bf16BlockWeights p;
  p.out = out;
  p.in = in;
  p.group_begin.push_back(0);
  p.bias.assign(static_cast<size_t>(groups * 4), 0.0f);
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  for (int64_t g = 0; g < groups; ++g) {
    const int rows = static_cast<int>(std::min<int64_t>(4, out - g * 4));
    std::vector<int64_t> columns;
    for (int64_t c = 0; c < in; ++c) {
      bool nonzero = false;
      for (int r = 0; r < rows; ++r) nonzero |= (to_bf16(w[(g * 4 + r) * in + c]) & 0x7fff) != 0;
      if (nonzero) columns.push_back(c);
    }
    p.nonzero_blocks += static_cast<int64_t>(columns.size());
    for (size_t k = 0; k < columns.size(); k += 2) {
      const bool pair = k + 1 < columns.size();
      const int64_t c[2] = {columns[k], pair ? columns[k + 1] : columns[k]};
      uint8_t entry[kBf16EntryBytes] = {};
      for (int j = 0; j < 2; ++j) {
        const auto offset = static_cast<uint32_t>(c[j] * kBf16ColumnBytes);
        std::memcpy(entry + 4 * j, &offset, 4);
      }
      for (int r = 0; r < rows; ++r)
        for (int j = 0; j < (pair ? 2 : 1); ++j) {
          const uint16_t v = to_bf16(w[(g * 4 + r) * in + c[j]]);
          std::memcpy(entry + 8 + 4 * r + 2 * j, &v, 2);
        }
      p.entries.insert(p.entries.end(), entry, entry + kBf16EntryBytes);
    }
    p.group_begin.push_back(static_cast<int64_t>(p.entries.size()) / kBf16EntryBytes);
  }
  p.entries.resize(p.entries.size() + static_cast<size_t>(kEntryReadAhead * kBf16EntryBytes), 0);
  return p;
}

std::vector<float> to_dense(const Bf16BlockWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t e = p.group_begin[g]; e < p.group_begin[g + 1]; ++e) {
      const uint8_t* entry = p.entries.data() + e * kBf16EntryBytes;
      for (int j = 0; j < 2; ++j) {
        uint32_t offset;
        std::memcpy(&offset, entry + 4 * j, 4);
        const int64_t c = offset / kBf16ColumnBytes;
        for (int r = 0; r < 4 && g * 4 + r < p.out; ++r) {
          uint16_t v;
          std::memcpy(&v, entry + 8 + 4 * r + 2 * j, 2);
          if (v & 0x7fff) w[(g * 4 + r) * p.in + c] = from_bf16(v);
        }
      }
    }
  return w;
}

int64_t bf16_activation_elements(int64_t tokens, int64_t in) {
  return ceil_div(tokens, kBf16SliceTokens) * kBf16SliceTokens * in;
}

void layout_bf16_activations(const float* x, int64_t tokens, int64_t in, uint16_t* dst) {
  const int64_t slices = ceil_div(tokens, kBf16SliceTokens);
  for (int64_t s = 0; s < slices; ++s)
    for (int slot = 0; slot < kBf16SliceTokens; ++slot) {
      const int64_t t = s * kBf16SliceTokens + bf16_slice_token(slot);
      uint16_t* column = dst + s * in * kBf16SliceTokens + slot;
      for (int64_t i = 0; i < in; ++i)
        column[i * kBf16SliceTokens] = t < tokens ? to_bf16(x[t * in + i]) : 0;
    }
}

}  // namespace sparq::sparse
