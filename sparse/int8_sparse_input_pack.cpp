#include "sparse/int8_sparse_input_pack.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <string>

#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "sparse/masked_entries.hpp"

namespace sparq::sparse {
namespace {

// The slice row stored at position p (see the header).
constexpr int row_at(int p) { return 16 * (p / 4 % 4) + 4 * (p / 16) + p % 4; }

}  // namespace

int64_t Int8SparseInputWeights::bytes() const {
  return static_cast<int64_t>(entries.size() + offsets.size() * sizeof(uint32_t) +
                              (scales.size() + bias.size()) * sizeof(float));
}

Int8SparseInputWeights pack_int8_sparse_input(const int8_t* wq, const float* w_scale,
                                              const float* bias, int64_t out, int64_t in,
                                              bool masked, int chunk_rows) {
  require(wq != nullptr && w_scale != nullptr,
          "pack_int8_sparse_input: weight and scales must not be null");
  require(out > 0 && in > 0, "pack_int8_sparse_input: out and in must be positive");
  if (const auto why = sparse_input_chunk_rows_error(chunk_rows, masked, kSparseInputMaxChunkRows,
                                                     kSparseInputMaxMaskedChunkRows);
      !why.empty())
    throw InvalidArgument("pack_int8_sparse_input: " + why);
  for (int64_t i = 0; i < out * in; ++i)
    require(wq[i] != -128, [&] {
      return "pack_int8_sparse_input: weight[" + std::to_string(i / in) + "][" +
             std::to_string(i % in) + "] is -128; symmetric int8 weights are in -127..127";
    });
  Int8SparseInputWeights p;
  p.out = out;
  p.in = in;
  p.chunk_rows = chunk_rows;
  p.masked = masked;
  const int64_t rows = p.padded_out(), chunks = p.chunks();
  p.scales.assign(static_cast<size_t>(rows), 0.0f);
  p.bias.assign(static_cast<size_t>(rows), 0.0f);
  for (int64_t r = 0; r < out; ++r) {
    p.scales[r] = w_scale[r];
    if (bias) p.bias[r] = bias[r];
  }
  auto weight = [&](int64_t r, int64_t j) -> int8_t { return r < out ? wq[r * in + j] : 0; };
  if (!masked) {
    p.entries.assign(static_cast<size_t>(p.entry_offset(chunks - 1, in) + 64), 0);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t j = 0; j < in; ++j) {
        uint8_t* e = p.entries.data() + p.entry_offset(c, j);
        for (int s = 0; s < p.stored_rows(c) / kSparseInputSlice; ++s)
          for (int pos = 0; pos < kSparseInputSlice; ++pos)
            e[s * kSparseInputSlice + pos] = static_cast<uint8_t>(
                weight(c * chunk_rows + s * kSparseInputSlice + row_at(pos), j) + 128);
      }
    return p;
  }
  int64_t nonzeros = 0;
  for (int64_t i = 0; i < out * in; ++i) nonzeros += wq[i] != 0;
  const int sub_rows = p.sub_rows(), sub_slices = sub_rows / kSparseInputSlice;
  const int64_t total = nonzeros + p.sub_chunks() * in * sub_slices * 8;
  if (total > std::numeric_limits<uint32_t>::max())
    throw NotSupported("pack_int8_sparse_input: the masked layout of a " + std::to_string(out) +
                       " x " + std::to_string(in) + " weight needs " + std::to_string(total) +
                       " bytes; its 32-bit offsets address at most 4 GiB");
  p.entries.assign(static_cast<size_t>(total + 64), 0);
  p.offsets.resize(static_cast<size_t>(p.sub_chunks() * in));
  pack_masked_entries<kSparseInputSlice, uint8_t>(
      p, row_at, [&](int64_t r, int64_t j) -> std::optional<uint8_t> {
        const int8_t v = weight(r, j);
        if (v == 0) return std::nullopt;
        return static_cast<uint8_t>(v + 128);
      });
  return p;
}

namespace {

// Calls f(row within the chunk, w) for every stored weight of entry (c, j).
template <typename F>
void for_each_weight(const Int8SparseInputWeights& p, int64_t c, int64_t j, F f) {
  if (!p.masked) {
    const uint8_t* e = p.entries.data() + p.entry_offset(c, j);
    for (int s = 0; s < p.stored_rows(c) / kSparseInputSlice; ++s)
      for (int pos = 0; pos < kSparseInputSlice; ++pos)
        f(s * kSparseInputSlice + row_at(pos), e[s * kSparseInputSlice + pos] - 128);
    return;
  }
  for_each_masked_weight<kSparseInputSlice, uint8_t>(
      p, c, j, row_at, [&](int64_t row, uint8_t v) { f(row, v - 128); });
}

}  // namespace

std::vector<int8_t> to_dense(const Int8SparseInputWeights& p) {
  std::vector<int8_t> w(static_cast<size_t>(p.out * p.in), 0);
  for (int64_t c = 0; c < p.chunks(); ++c)
    for (int64_t j = 0; j < p.in; ++j)
      for_each_weight(p, c, j, [&](int64_t row, int v) {
        const int64_t r = c * p.chunk_rows + row;
        if (r < p.out) w[static_cast<size_t>(r * p.in + j)] = static_cast<int8_t>(v);
      });
  return w;
}

void sparse_input_reference(const Int8SparseInputWeights& p, const int32_t* columns,
                            const int8_t* x, int64_t count, int64_t c0, int64_t c1, int32_t* acc) {
  require(c0 >= 0 && c0 <= c1 && c1 <= p.chunks(), "sparse_input_reference: bad chunk range");
  std::fill(acc, acc + (c1 - c0) * p.chunk_rows, 0);
  for (int64_t c = c0; c < c1; ++c) {
    int32_t* a = acc + (c - c0) * p.chunk_rows;
    for (int64_t i = 0; i < count; ++i) {
      require(columns[i] >= 0 && columns[i] < p.in, "sparse_input_reference: column out of range");
      for_each_weight(p, c, columns[i], [&](int64_t row, int v) { a[row] += v * x[i]; });
    }
  }
}

}  // namespace sparq::sparse
