#include "sparse/f32_block_pack.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/int8_block_pack.hpp"

namespace sparq::sparse {

int f32_slice_token(int slice_tokens, int slot) {
  if (slice_tokens == 16) {
    const int half = slot / 8, lane = slot % 8;
    return lane < 4 ? 4 * half + lane : 8 + 4 * half + (lane - 4);
  }
  require(slice_tokens == 32 || slice_tokens == 64,
          "f32_slice_token: slices of 16, 32 or 64 tokens exist");
  // zmm q of a column holds, in its 128-bit lane L, the tokens 4 * quarters * L + 4q + 0..3: a
  // 4x4 transpose per lane then gives each token's 4 rows (the int8 quads order for 64).
  const int quarters = slice_tokens / 16, q = slot / 16, lane = (slot % 16) / 4, j = slot % 4;
  return 4 * quarters * lane + 4 * q + j;
}

int64_t F32BlockWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              bias.size() * sizeof(float));
}

F32BlockWeights pack_f32_4x1(const float* w, const float* bias, int64_t out, int64_t in,
                             int slice_tokens) {
  require(w != nullptr, "pack_f32_4x1: weight must not be null");
  require(out > 0 && in > 0, "pack_f32_4x1: out and in must be positive");
  require(slice_tokens > 0, "pack_f32_4x1: slice_tokens must be positive");
  const int64_t column_bytes = int64_t{slice_tokens} * 4;
  require(in * column_bytes <= std::numeric_limits<uint32_t>::max(),
          "pack_f32_4x1: in_features too large for 32-bit column offsets");
  const int64_t groups = ceil_div(out, 4);
  F32BlockWeights p;
  p.out = out;
  p.in = in;
  p.slice_tokens = slice_tokens;
  p.group_begin.push_back(0);
  p.bias.assign(static_cast<size_t>(groups * 4), 0.0f);
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  for (int64_t g = 0; g < groups; ++g) {
    const int rows = static_cast<int>(std::min<int64_t>(4, out - g * 4));
    for (int64_t c = 0; c < in; ++c) {
      float block[4] = {};
      bool nonzero = false;
      for (int r = 0; r < rows; ++r) {
        block[r] = w[(g * 4 + r) * in + c];
        nonzero |= block[r] != 0.0f;
      }
      if (!nonzero) continue;
      uint8_t entry[kF32EntryBytes];
      const auto offset = static_cast<uint32_t>(c * column_bytes);
      std::memcpy(entry, &offset, 4);
      std::memcpy(entry + 4, block, sizeof block);
      p.entries.insert(p.entries.end(), entry, entry + kF32EntryBytes);
      ++p.nonzero_blocks;
    }
    p.group_begin.push_back(static_cast<int64_t>(p.entries.size()) / kF32EntryBytes);
  }
  // Kernels may read the column offsets of entries a few places ahead (to prefetch them).
  p.entries.resize(p.entries.size() + static_cast<size_t>(kEntryReadAhead * kF32EntryBytes), 0);
  return p;
}

std::vector<float> to_dense(const F32BlockWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t e = p.group_begin[g]; e < p.group_begin[g + 1]; ++e) {
      const uint8_t* entry = p.entries.data() + e * kF32EntryBytes;
      uint32_t offset;
      std::memcpy(&offset, entry, 4);
      const int64_t c = offset / (int64_t{p.slice_tokens} * 4);
      for (int r = 0; r < 4 && g * 4 + r < p.out; ++r)
        std::memcpy(&w[(g * 4 + r) * p.in + c], entry + 4 + 4 * r, 4);
    }
  return w;
}

int64_t f32_activation_floats(int64_t tokens, int64_t in, int slice_tokens) {
  return ceil_div(tokens, slice_tokens) * slice_tokens * in;
}

void layout_f32_activations(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                            bool round_to_bf16, float* dst) {
  const int64_t slices = ceil_div(tokens, slice_tokens);
  for (int64_t s = 0; s < slices; ++s) {
    float* slice = dst + s * in * slice_tokens;
    for (int slot = 0; slot < slice_tokens; ++slot) {
      const int64_t t = s * slice_tokens + f32_slice_token(slice_tokens, slot);
      float* column = slice + slot;
      if (t >= tokens) {
        for (int64_t i = 0; i < in; ++i) column[i * slice_tokens] = 0.0f;
        continue;
      }
      const float* row = x + t * in;
      for (int64_t i = 0; i < in; ++i)
        column[i * slice_tokens] = round_to_bf16 ? from_bf16(to_bf16(row[i])) : row[i];
    }
  }
}

}  // namespace sparq::sparse
