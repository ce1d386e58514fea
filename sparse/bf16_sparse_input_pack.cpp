#include "sparse/bf16_sparse_input_pack.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/masked_entries.hpp"

namespace sparq::sparse {
namespace {

// The slice row stored at position p (see the header).
constexpr int row_at(int p) { return 16 * (p % 2) + p / 2; }

// bf16 bits of w[r][j] (rows past out: 0); +-0 both count as zero weights.
uint16_t weight_bits(const float* w, int64_t out, int64_t in, int64_t r, int64_t j) {
  if (r >= out) return 0;
  const uint16_t b = to_bf16(w[r * in + j]);
  return (b & 0x7fff) == 0 ? 0 : b;
}

void check_chunk_rows(int chunk_rows, bool masked, const char* who) {
  if (const auto why = sparse_input_chunk_rows_error(
          chunk_rows, masked, kBf16SparseInputMaxChunkRows, kBf16SparseInputMaxMaskedChunkRows);
      !why.empty())
    throw InvalidArgument(std::string(who) + ": " + why);
}

}  // namespace

int64_t Bf16SparseInputWeights::bytes() const {
  return static_cast<int64_t>(entries.size() + offsets.size() * sizeof(uint32_t) +
                              bias.size() * sizeof(float));
}

int64_t bf16_sparse_input_masked_bytes(const float* w, int64_t out, int64_t in, int chunk_rows) {
  check_chunk_rows(chunk_rows, true, "bf16_sparse_input_masked_bytes");
  int64_t nonzeros = 0;
  for (int64_t r = 0; r < out; ++r)
    for (int64_t j = 0; j < in; ++j) nonzeros += weight_bits(w, out, in, r, j) != 0;
  return 2 * nonzeros +
         Bf16SparseInputWeights::sub_chunks_of(out, chunk_rows) * in *
             (Bf16SparseInputWeights::sub_rows_of(chunk_rows) / kBf16SparseInputSlice) * 4;
}

Bf16SparseInputWeights pack_bf16_sparse_input(const float* w, const float* bias, int64_t out,
                                              int64_t in, bool masked, int chunk_rows) {
  require(w != nullptr, "pack_bf16_sparse_input: the weight must not be null");
  require(out > 0 && in > 0, "pack_bf16_sparse_input: out and in must be positive");
  check_chunk_rows(chunk_rows, masked, "pack_bf16_sparse_input");
  Bf16SparseInputWeights p;
  p.out = out;
  p.in = in;
  p.chunk_rows = chunk_rows;
  p.masked = masked;
  const int64_t rows = p.padded_out(), chunks = p.chunks();
  p.bias.assign(static_cast<size_t>(rows), 0.0f);
  if (bias) std::copy(bias, bias + out, p.bias.begin());
  auto put = [&](int64_t at, uint16_t v) { std::memcpy(p.entries.data() + at, &v, 2); };
  if (!masked) {
    p.entries.assign(static_cast<size_t>(p.entry_offset(chunks - 1, in) + 64), 0);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t j = 0; j < in; ++j) {
        const int64_t e = p.entry_offset(c, j);
        for (int64_t s = 0; s < p.stored_rows(c) / kBf16SparseInputSlice; ++s)
          for (int pos = 0; pos < kBf16SparseInputSlice; ++pos)
            put(e + 2 * (s * kBf16SparseInputSlice + pos),
                weight_bits(w, out, in, c * chunk_rows + s * kBf16SparseInputSlice + row_at(pos),
                            j));
      }
    return p;
  }
  const int64_t total = bf16_sparse_input_masked_bytes(w, out, in, chunk_rows);
  if (total > std::numeric_limits<uint32_t>::max())
    throw NotSupported("pack_bf16_sparse_input: the masked layout of a " + std::to_string(out) +
                       " x " + std::to_string(in) + " weight needs " + std::to_string(total) +
                       " bytes; its 32-bit offsets address at most 4 GiB");
  p.entries.assign(static_cast<size_t>(total + 64), 0);
  p.offsets.resize(static_cast<size_t>(p.sub_chunks() * in));
  pack_masked_entries<kBf16SparseInputSlice, uint16_t>(
      p, row_at, [&](int64_t r, int64_t j) -> std::optional<uint16_t> {
        const uint16_t v = weight_bits(w, out, in, r, j);
        if (v == 0) return std::nullopt;
        return v;
      });
  return p;
}

namespace {

// Calls f(row within the chunk, w) for every stored weight of entry (c, j), in position order.
template <typename F>
void for_each_weight(const Bf16SparseInputWeights& p, int64_t c, int64_t j, F f) {
  auto at = [&](const uint8_t* b) {
    uint16_t v;
    std::memcpy(&v, b, 2);
    return from_bf16(v);
  };
  if (!p.masked) {
    const uint8_t* e = p.entries.data() + p.entry_offset(c, j);
    for (int64_t s = 0; s < p.stored_rows(c) / kBf16SparseInputSlice; ++s)
      for (int pos = 0; pos < kBf16SparseInputSlice; ++pos)
        f(s * kBf16SparseInputSlice + row_at(pos), at(e + 2 * (s * kBf16SparseInputSlice + pos)));
    return;
  }
  for_each_masked_weight<kBf16SparseInputSlice, uint16_t>(
      p, c, j, row_at, [&](int64_t row, uint16_t v) { f(row, from_bf16(v)); });
}

}  // namespace

std::vector<float> to_dense(const Bf16SparseInputWeights& p) {
  std::vector<float> w(static_cast<size_t>(p.out * p.in), 0.0f);
  for (int64_t c = 0; c < p.chunks(); ++c)
    for (int64_t j = 0; j < p.in; ++j)
      for_each_weight(p, c, j, [&](int64_t row, float v) {
        const int64_t r = c * p.chunk_rows + row;
        if (r < p.out) w[static_cast<size_t>(r * p.in + j)] = v;
      });
  return w;
}

void sparse_input_reference(const Bf16SparseInputWeights& p, const int32_t* columns, const float* x,
                            int64_t count, int64_t c0, int64_t c1, float* acc) {
  require(c0 >= 0 && c0 <= c1 && c1 <= p.chunks(), "sparse_input_reference: bad chunk range");
  std::fill(acc, acc + (c1 - c0) * p.chunk_rows, 0.0f);
  for (int64_t c = c0; c < c1; ++c) {
    float* a = acc + (c - c0) * p.chunk_rows;
    for (int64_t i = 0; i < count; ++i) {
      require(columns[i] >= 0 && columns[i] < p.in, "sparse_input_reference: column out of range");
      // Masked-out weights are zeros the kernel adds too (0 * x), which leaves the sum as is
      // (x finite); the reference skips them.
      for_each_weight(p, c, columns[i],
                      [&](int64_t row, float v) { a[row] = std::fma(v, x[i], a[row]); });
    }
  }
}

}  // namespace sparq::sparse
