#include "sparse/int8_nm_prefill_pack.hpp"

#include <cstring>

namespace sparq::sparse {

int64_t Int8NmPrefillWeights::bytes() const {
  return static_cast<int64_t>(entries.size() + (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

Int8NmPrefillWeights pack_int8_2of4_prefill(const Int8NmDecodeWeights& d) {
  Int8NmPrefillWeights p;
  p.out = d.out;
  p.in = d.in;
  p.windows = d.windows;
  p.groups = d.groups();
  p.scales = d.scales;
  p.bias = d.bias;
  p.compensation = d.compensation;
  p.entries.assign(static_cast<size_t>(p.groups * p.windows * kNmPrefillEntryBytes), 0);
  for (int64_t e = 0; e < p.groups * p.windows; ++e) {
    const uint8_t* from = d.entries.data() + e * kNmDecodeEntryBytes;
    uint8_t* to = p.entries.data() + e * kNmPrefillEntryBytes;
    for (int lane = 0; lane < kNmDecodeRows; ++lane) {
      const uint8_t positions = from[64 + lane];
      // Slot s holds the kept value of block s / 2 at position (positions >> 2s) & 3.
      for (int s = 0; s < 4; ++s)
        to[4 * lane + s] = static_cast<uint8_t>(4 * (s / 2) + ((positions >> (2 * s)) & 3));
    }
    std::memcpy(to + 64, from, 64);
  }
  return p;
}

Int8NmPrefillWeights pack_int8_2of4_prefill(const int8_t* wq, const float* w_scale,
                                            const float* bias, int64_t out, int64_t in) {
  return pack_int8_2of4_prefill(pack_int8_2of4_decode(wq, w_scale, bias, out, in));
}

std::vector<int8_t> to_dense(const Int8NmPrefillWeights& p) {
  std::vector<int8_t> w(static_cast<size_t>(p.out * p.in), 0);
  for (int64_t r = 0; r < p.out; ++r) {
    const int64_t g = r / kNmDecodeRows, lane = r % kNmDecodeRows;
    for (int64_t win = 0; win < p.windows; ++win) {
      const uint8_t* entry = p.entries.data() + (g * p.windows + win) * kNmPrefillEntryBytes;
      for (int s = 0; s < 4; ++s) {
        const auto v = static_cast<int8_t>(entry[64 + 4 * lane + s]);
        if (v != 0) w[r * p.in + win * kNmDecodeWindow + entry[4 * lane + s]] = v;
      }
    }
  }
  return w;
}

}  // namespace sparq::sparse
