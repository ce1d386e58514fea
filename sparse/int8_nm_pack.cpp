#include "sparse/int8_nm_pack.hpp"

#include <cstring>
#include <string>

#include "sparq/error.hpp"
#include "sparse/checks.hpp"

namespace sparq::sparse {

int64_t Int8NmWeights::bytes() const {
  return static_cast<int64_t>(entries.size() + (scales.size() + bias.size()) * sizeof(float));
}

Int8NmWeights pack_int8_2of4(const int8_t* wq, const float* w_scale, const float* bias, int64_t out,
                             int64_t in) {
  require(wq != nullptr && w_scale != nullptr,
          "pack_int8_2of4: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_2of4: out and in must be positive");
  Int8NmWeights p;
  p.out = out;
  p.in = in;
  p.windows = ceil_div(in, kNmWindow);
  p.scales.assign(w_scale, w_scale + out);
  p.bias.assign(static_cast<size_t>(out), 0.0f);
  if (bias) p.bias.assign(bias, bias + out);
  p.entries.assign(static_cast<size_t>(out * p.windows * kNmWindowBytes), 0);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t win = 0; win < p.windows; ++win) {
      uint8_t* entry = p.entries.data() + (r * p.windows + win) * kNmWindowBytes;
      int8_t kept[16][2] = {};
      int index[16][2] = {};
      for (int b = 0; b < 16; ++b) {
        int n = 0;
        for (int i = 0; i < 4; ++i) {
          const int64_t c = win * kNmWindow + 4 * b + i;
          if (c >= in || wq[r * in + c] == 0) continue;
          if (n == 2)
            throw InvalidArgument("pack_int8_2of4: the weight is not 2:4: row " +
                                  std::to_string(r) + ", columns " + std::to_string(c - i) + ".." +
                                  std::to_string(c - i + 3) + " hold more than 2 non-zeros");
          kept[b][n] = wq[r * in + c];
          index[b][n] = i;
          ++n;
        }
      }
      for (int slot = 0; slot < 32; ++slot) {
        const int b = nm_slot_block(slot);
        entry[slot] = static_cast<uint8_t>(kept[b][slot % 2]);
        entry[32 + nm_position_byte(slot)] |=
            static_cast<uint8_t>(index[b][slot % 2] << nm_position_shift(slot));
      }
    }
  return p;
}

std::vector<int8_t> to_dense(const Int8NmWeights& p) {
  std::vector<int8_t> w(static_cast<size_t>(p.out * p.in), 0);
  for (int64_t r = 0; r < p.out; ++r)
    for (int64_t win = 0; win < p.windows; ++win) {
      const uint8_t* entry = p.entries.data() + (r * p.windows + win) * kNmWindowBytes;
      for (int slot = 0; slot < 32; ++slot) {
        const int64_t c = win * kNmWindow + 4 * nm_slot_block(slot) + nm_slot_position(entry, slot);
        const auto v = static_cast<int8_t>(entry[slot]);
        if (v != 0) w[r * p.in + c] = v;
      }
    }
  return w;
}

}  // namespace sparq::sparse
