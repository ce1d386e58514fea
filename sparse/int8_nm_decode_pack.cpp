#include "sparse/int8_nm_decode_pack.hpp"

#include <string>

#include "sparq/error.hpp"
#include "sparse/checks.hpp"

namespace sparq::sparse {

int64_t Int8NmDecodeWeights::bytes() const {
  return static_cast<int64_t>(entries.size() + (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

Int8NmDecodeWeights pack_int8_2of4_decode(const int8_t* wq, const float* w_scale, const float* bias,
                                          int64_t out, int64_t in) {
  require(wq != nullptr && w_scale != nullptr,
          "pack_int8_2of4_decode: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_2of4_decode: out and in must be positive");
  Int8NmDecodeWeights p;
  p.out = out;
  p.in = in;
  p.windows = ceil_div(in, kNmDecodeWindow);
  const int64_t groups = ceil_div(out, kNmDecodeRows), rows = groups * kNmDecodeRows;
  p.scales.assign(static_cast<size_t>(rows), 0.0f);
  p.bias.assign(static_cast<size_t>(rows), 0.0f);
  p.compensation.assign(static_cast<size_t>(rows), 0);
  for (int64_t r = 0; r < out; ++r) {
    p.scales[r] = w_scale[r];
    if (bias) p.bias[r] = bias[r];
  }
  for (int64_t g = 0; g <= groups; ++g) p.group_begin.push_back(g * p.windows);
  p.entries.assign(static_cast<size_t>(groups * p.windows * kNmDecodeEntryBytes), 0);
  for (int64_t r = 0; r < out; ++r) {
    const int64_t g = r / kNmDecodeRows, lane = r % kNmDecodeRows;
    int32_t sum = 0;
    for (int64_t win = 0; win < p.windows; ++win) {
      uint8_t* entry = p.entries.data() + (g * p.windows + win) * kNmDecodeEntryBytes;
      uint8_t positions = 0;
      for (int b = 0; b < 2; ++b) {
        int n = 0;
        for (int i = 0; i < 4; ++i) {
          const int64_t c = win * kNmDecodeWindow + 4 * b + i;
          if (c >= in || wq[r * in + c] == 0) continue;
          if (n == 2)
            throw InvalidArgument("pack_int8_2of4_decode: the weight is not 2:4: row " +
                                  std::to_string(r) + ", columns " + std::to_string(c - i) + ".." +
                                  std::to_string(c - i + 3) + " hold more than 2 non-zeros");
          entry[4 * lane + 2 * b + n] = static_cast<uint8_t>(wq[r * in + c]);
          positions |= static_cast<uint8_t>(i << (4 * b + 2 * n));
          sum += wq[r * in + c];
          ++n;
        }
      }
      entry[64 + lane] = positions;
    }
    p.compensation[r] = 128 * sum;
  }
  return p;
}

std::vector<int8_t> to_dense(const Int8NmDecodeWeights& p) {
  std::vector<int8_t> w(static_cast<size_t>(p.out * p.in), 0);
  for (int64_t r = 0; r < p.out; ++r) {
    const int64_t g = r / kNmDecodeRows, lane = r % kNmDecodeRows;
    for (int64_t win = 0; win < p.windows; ++win) {
      const uint8_t* entry = p.entries.data() + (g * p.windows + win) * kNmDecodeEntryBytes;
      for (int s = 0; s < 4; ++s) {
        const auto v = static_cast<int8_t>(entry[4 * lane + s]);
        const int64_t c = win * kNmDecodeWindow + 4 * (s / 2) + (entry[64 + lane] >> (2 * s) & 3);
        if (v != 0) w[r * p.in + c] = v;
      }
    }
  }
  return w;
}

}  // namespace sparq::sparse
