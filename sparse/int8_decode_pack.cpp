#include "sparse/int8_decode_pack.hpp"

#include <algorithm>
#include <cstring>

#include "sparse/checks.hpp"

namespace sparq::sparse {

int64_t Int8DecodeWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              (scales.size() + bias.size()) * sizeof(float));
}

Int8DecodeWeights pack_int8_decode(const int8_t* wq, const float* w_scale, const float* bias,
                                   int64_t out, int64_t in) {
  require(wq != nullptr && w_scale != nullptr,
          "pack_int8_decode: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_decode: out and in must be positive");
  require(in <= kDecodeMaxIn, [&] {
    return "pack_int8_decode: in_features " + std::to_string(in) + " exceeds the u16 columns (" +
           std::to_string(kDecodeMaxIn) + ")";
  });
  const int64_t groups = ceil_div(out, kDecodeRows);
  Int8DecodeWeights p;
  p.out = out;
  p.in = in;
  p.group_begin.push_back(0);
  p.scales.assign(static_cast<size_t>(groups * kDecodeRows), 0.0f);
  p.bias.assign(p.scales.size(), 0.0f);
  std::memcpy(p.scales.data(), w_scale, static_cast<size_t>(out) * sizeof(float));
  if (bias) std::memcpy(p.bias.data(), bias, static_cast<size_t>(out) * sizeof(float));
  std::vector<int64_t> cols;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = g * kDecodeRows, rows = std::min<int64_t>(kDecodeRows, out - r0);
    cols.clear();
    for (int64_t c = 0; c < in; ++c)
      for (int64_t r = 0; r < rows; ++r)
        if (wq[(r0 + r) * in + c] != 0) {
          cols.push_back(c);
          break;
        }
    p.nonzero_blocks += static_cast<int64_t>(cols.size());
    for (size_t first = 0; first < cols.size(); first += 2) {
      uint8_t entry[kDecodeEntryBytes] = {};
      const bool pair = first + 1 < cols.size();
      const int64_t c[2] = {cols[first], pair ? cols[first + 1] : cols[first]};
      for (int j = 0; j < 2; ++j) {
        const auto column = static_cast<uint16_t>(c[j]);
        std::memcpy(entry + 2 * j, &column, 2);
      }
      for (int64_t r = 0; r < rows; ++r) {
        entry[4 + 2 * r] = static_cast<uint8_t>(wq[(r0 + r) * in + c[0]]);
        if (pair) entry[4 + 2 * r + 1] = static_cast<uint8_t>(wq[(r0 + r) * in + c[1]]);
      }
      p.entries.insert(p.entries.end(), entry, entry + kDecodeEntryBytes);
    }
    p.group_begin.push_back(static_cast<int64_t>(p.entries.size()) / kDecodeEntryBytes);
  }
  return p;
}

std::vector<int8_t> to_dense(const Int8DecodeWeights& p) {
  std::vector<int8_t> w(static_cast<size_t>(p.out * p.in), 0);
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t e = p.group_begin[g]; e < p.group_begin[g + 1]; ++e) {
      const uint8_t* entry = p.entries.data() + e * kDecodeEntryBytes;
      for (int j = 0; j < 2; ++j) {
        uint16_t c;
        std::memcpy(&c, entry + 2 * j, 2);
        for (int64_t r = 0; r < kDecodeRows && g * kDecodeRows + r < p.out; ++r) {
          const auto v = static_cast<int8_t>(entry[4 + 2 * r + j]);
          if (v != 0) w[(g * kDecodeRows + r) * p.in + c] = v;
        }
      }
    }
  return w;
}

}  // namespace sparq::sparse
