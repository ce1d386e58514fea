#include "sparse/nm_table_pack.hpp"

#include <algorithm>
#include <cstring>
#include <span>
#include <string>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/stats.hpp"

namespace sparq::sparse {
namespace {

// The pair (0..5) holding a block's non-zero columns (mask bit i: column i is non-zero; at most
// 2 bits set). A block with one or no non-zero takes the first pair that covers it.
int pair_of(unsigned mask) {
  for (int p = 0; p < 6; ++p) {
    const unsigned covered = (1u << kNmPairColumns[p][0]) | (1u << kNmPairColumns[p][1]);
    if ((mask & ~covered) == 0) return p;
  }
  return -1;  // more than 2 non-zeros: excluded by the 2:4 check before packing
}

// Packs the entries of either type: value_of(r, c) gives the bits of row r's weight at column c
// (0 past `in` and for padding rows), element_bits its width (8 or 16).
template <typename ValueOf>
void pack_entries(NmTableWeights& p, int element_bits, ValueOf value_of) {
  const int unit_columns = nm_table_unit_columns(p.type);
  const int64_t groups = ceil_div(p.out, 4);
  p.units = ceil_div(p.in, unit_columns);
  for (int64_t g = 0; g <= groups; ++g) p.group_begin.push_back(g * p.units);
  p.entries.assign(static_cast<size_t>(groups * p.units * kNmTableEntryBytes), 0);
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t u = 0; u < p.units; ++u) {
      uint8_t* entry = p.entries.data() + p.entry_index(g, u) * kNmTableEntryBytes;
      for (int r = 0; r < 4; ++r) {
        const int64_t row = 4 * g + r;
        int combination = 0;
        uint32_t value = 0;
        int lane_element = 0;
        for (int b = 0; b < unit_columns / 4; ++b) {
          const int64_t c0 = u * unit_columns + 4 * b;
          unsigned mask = 0;
          for (int i = 0; i < 4; ++i)
            if (value_of(row, c0 + i) != 0) mask |= 1u << i;
          const int pair = pair_of(mask);
          combination = 6 * combination + pair;
          for (int k = 0; k < 2; ++k) {
            value |= value_of(row, c0 + kNmPairColumns[pair][k]) << (element_bits * lane_element);
            ++lane_element;
          }
        }
        const auto offset = static_cast<uint16_t>(combination * kNmTableQuarterBytes);
        std::memcpy(entry + 2 * r, &offset, sizeof(offset));
        std::memcpy(entry + 8 + 4 * r, &value, sizeof(value));
      }
    }
}

void require_2of4(std::span<const float> w, int64_t out, int64_t in, const char* what) {
  if (auto v = first_n_m_violation(w, out, in, 2, 4))
    throw InvalidArgument(std::string(what) + ": the weight is not 2:4: " + v->describe(2, 4));
}

// Unpacks entry (g, u) row r: calls visit(column, lane element bits).
template <typename Visit>
void for_each_kept(const NmTableWeights& p, int64_t g, int64_t u, int r, int element_bits,
                   Visit visit) {
  const uint8_t* entry = p.entries.data() + p.entry_index(g, u) * kNmTableEntryBytes;
  uint16_t offset = 0;
  uint32_t value = 0;
  std::memcpy(&offset, entry + 2 * r, sizeof(offset));
  std::memcpy(&value, entry + 8 + 4 * r, sizeof(value));
  const int combination = offset / kNmTableQuarterBytes;
  const int blocks = nm_table_unit_columns(p.type) / 4;
  const uint32_t element_mask = (1u << element_bits) - 1;
  for (int b = 0; b < blocks; ++b)
    for (int k = 0; k < 2; ++k) {
      const int pair = blocks == 1 ? combination : b == 0 ? combination / 6 : combination % 6;
      const int64_t c = u * nm_table_unit_columns(p.type) + 4 * b + kNmPairColumns[pair][k];
      const int lane_element = 2 * b + k;
      visit(c, (value >> (element_bits * lane_element)) & element_mask);
    }
}

}  // namespace

int64_t NmTableWeights::bytes() const {
  return static_cast<int64_t>(group_begin.size() * sizeof(int64_t) + entries.size() +
                              (scales.size() + bias.size()) * sizeof(float) +
                              compensation.size() * sizeof(int32_t));
}

NmTableWeights pack_int8_2of4_table(const int8_t* wq, const float* w_scale, const float* bias,
                                    int64_t out, int64_t in) {
  require(wq != nullptr && w_scale != nullptr,
          "pack_int8_2of4_table: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_2of4_table: out and in must be positive");
  {
    std::vector<float> as_float(wq, wq + out * in);
    require_2of4(as_float, out, in, "pack_int8_2of4_table");
  }
  NmTableWeights p;
  p.type = NmTableType::int8;
  p.out = out;
  p.in = in;
  const int64_t padded = ceil_div(out, 4) * 4;
  p.scales.assign(static_cast<size_t>(padded), 0.0f);
  std::copy(w_scale, w_scale + out, p.scales.begin());
  p.bias.assign(static_cast<size_t>(padded), 0.0f);
  if (bias) std::copy(bias, bias + out, p.bias.begin());
  p.compensation.assign(static_cast<size_t>(padded), 0);
  for (int64_t r = 0; r < out; ++r) {
    int32_t sum = 0;
    for (int64_t c = 0; c < in; ++c) sum += wq[r * in + c];
    p.compensation[static_cast<size_t>(r)] = 128 * sum;
  }
  pack_entries(p, 8, [&](int64_t r, int64_t c) -> uint32_t {
    if (r >= out || c >= in) return 0;
    return static_cast<uint8_t>(wq[r * in + c]);
  });
  return p;
}

NmTableWeights pack_bf16_2of4_table(const float* w, const float* bias, int64_t out, int64_t in) {
  require(w != nullptr, "pack_bf16_2of4_table: weight must not be null");
  require(out > 0 && in > 0, "pack_bf16_2of4_table: out and in must be positive");
  require_2of4(std::span<const float>(w, static_cast<size_t>(out * in)), out, in,
               "pack_bf16_2of4_table");
  NmTableWeights p;
  p.type = NmTableType::bf16;
  p.out = out;
  p.in = in;
  p.bias.assign(static_cast<size_t>(ceil_div(out, 4) * 4), 0.0f);
  if (bias) std::copy(bias, bias + out, p.bias.begin());
  // A value that rounds to a bf16 zero stays a pruned entry: bits, not the float, are compared.
  pack_entries(p, 16, [&](int64_t r, int64_t c) -> uint32_t {
    if (r >= out || c >= in || w[r * in + c] == 0.0f) return 0;
    return to_bf16(w[r * in + c]);
  });
  return p;
}

namespace {

// The dense weight the entries hold, each kept value's bits turned into T by `value`.
template <typename T, typename Value>
std::vector<T> to_dense(const NmTableWeights& p, int element_bits, Value value) {
  std::vector<T> w(static_cast<size_t>(p.out * p.in), T{});
  for (int64_t g = 0; g < p.groups(); ++g)
    for (int64_t u = 0; u < p.units; ++u)
      for (int r = 0; r < 4; ++r)
        for_each_kept(p, g, u, r, element_bits, [&](int64_t c, uint32_t bits) {
          const int64_t row = 4 * g + r;
          if (bits == 0) return;
          require(row < p.out && c < p.in, "to_dense: a value outside the matrix");
          w[static_cast<size_t>(row * p.in + c)] = value(bits);
        });
  return w;
}

}  // namespace

std::vector<int8_t> to_dense_int8(const NmTableWeights& p) {
  require(p.type == NmTableType::int8, "to_dense_int8: the weight is bf16");
  return to_dense<int8_t>(p, 8, [](uint32_t bits) { return static_cast<int8_t>(bits); });
}

std::vector<float> to_dense_bf16(const NmTableWeights& p) {
  require(p.type == NmTableType::bf16, "to_dense_bf16: the weight is int8");
  return to_dense<float>(p, 16,
                         [](uint32_t bits) { return from_bf16(static_cast<uint16_t>(bits)); });
}

void build_nm_table_reference(NmTableType type, int quarters, const uint8_t* slice, int64_t in,
                              int64_t unit_begin, int64_t unit_end, uint8_t* table) {
  const bool int8 = type == NmTableType::int8;
  require(quarters == 4 || (!int8 && (quarters == 1 || quarters == 2)),
          "build_nm_table: int8 tables take 4 quarters, bf16 ones 1, 2 or 4");
  const int unit_columns = nm_table_unit_columns(type);
  const int column_bytes = nm_table_column_bytes(type, quarters);
  const int64_t vectors_bytes = int64_t{kNmTableQuarterBytes} * quarters;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    uint8_t* unit = table + (u - unit_begin) * nm_table_unit_bytes(type, quarters);
    for (int c = 0; c < nm_table_combinations(type); ++c) {
      // The unit's columns this combination keeps, in lane order.
      int64_t columns[4] = {};
      if (int8) {
        const int p0 = c / 6, p1 = c % 6;
        for (int k = 0; k < 2; ++k) {
          columns[k] = u * unit_columns + kNmPairColumns[p0][k];
          columns[2 + k] = u * unit_columns + 4 + kNmPairColumns[p1][k];
        }
      } else {
        for (int k = 0; k < 2; ++k) columns[k] = u * unit_columns + kNmPairColumns[c][k];
      }
      uint8_t* vectors = unit + c * vectors_bytes;
      for (int q = 0; q < quarters; ++q)
        for (int lane = 0; lane < 4; ++lane)
          for (int j = 0; j < 4; ++j) {
            uint8_t* dword = vectors + 64 * q + 16 * lane + 4 * j;
            if (int8) {
              // Column byte 16L + 4q + j: what vpunpck{l,h}bw then vpunpck{l,h}wd of the four
              // columns leave in vector q, lane L, dword j.
              const int slot = 16 * lane + 4 * q + j;
              for (int k = 0; k < 4; ++k)
                dword[k] = columns[k] < in ? slice[columns[k] * column_bytes + slot] : 0;
              continue;
            }
            // The column's element for token 4QL + 4q + j: in a 64-token slice at 32 (q / 2) +
            // 8L + 4 (q % 2) + j (what vpunpck{l,h}wd of the two columns' zmm q / 2 leave in
            // vector q, lane L, dword j); in a short slice at the token itself.
            const int slot = quarters == 4 ? 32 * (q / 2) + 8 * lane + 4 * (q % 2) + j
                                           : 4 * quarters * lane + 4 * q + j;
            for (int k = 0; k < 2; ++k)
              for (int b = 0; b < 2; ++b)
                dword[2 * k + b] =
                    columns[k] < in ? slice[columns[k] * column_bytes + 2 * slot + b] : 0;
          }
    }
  }
}

void layout_bf16_natural(const float* x, int64_t tokens, int64_t in, int slice_tokens,
                         uint16_t* dst) {
  for (int64_t i = 0; i < in; ++i)
    for (int t = 0; t < slice_tokens; ++t)
      dst[i * slice_tokens + t] = t < tokens ? to_bf16(x[t * in + i]) : 0;
}

}  // namespace sparq::sparse
