#include "src/int8_sparse_input_linear.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "src/activation_quant.hpp"
#include "src/input_list.hpp"
#include "src/input_list_parts.hpp"
#include "src/sparse_input_form.hpp"

namespace sparq {
namespace {

// A token's part of QuantizedInput::x: a 64-byte header (int64 quads, int32 compensation), the
// non-zero entries' columns (int32, padded to a multiple of 4), their s8 values (4 per dword).
struct TokenInput {
  int64_t quads;
  int32_t compensation;
};
int64_t padded_in(int64_t in) { return sparse::ceil_div(in, 4) * 4; }
// Columns: the padded list and the kernel's prefetch reach beyond it.
int64_t column_slots(int64_t in) { return padded_in(in) + 4 * jit::kSparseInputPrefetchQuads; }
int64_t values_at(int64_t in) { return 64 + 4 * column_slots(in); }
int64_t token_bytes(int64_t in) { return sparse::ceil_div(values_at(in) + padded_in(in), 64) * 64; }

// Lines the kernel prefetches per column: the dense form a short chunk's first lines (long ones a
// sub-chunk's, whatever this says); the masked form's short chunks the mean entry, plus one for the
// entries that straddle a line; its long chunks a sub-entry's mean lines, each sub-entry a group of
// quads ahead (Zen 4, 2:4, 4096 x 4096, 50 % zero inputs, 2 threads, cold: 3 lines of a 160-byte
// sub-entry 2.41x oneDNN's GEMV, 4 lines 1.96x).
int prefetch_lines(const sparse::Int8SparseInputWeights& w) {
  if (!w.masked) return std::min(w.chunk_rows / 64, 4);
  const double mean = static_cast<double>(w.entries.size()) / static_cast<double>(w.offsets.size());
  const int lines = static_cast<int>(std::ceil(mean / 64.0)) + (w.long_chunks() ? 0 : 1);
  return std::clamp(lines, 1, 64);
}

}  // namespace

bool Int8SparseInputLinear::masked_form(const int8_t* wq, int64_t out, int64_t in) {
  if (!jit::can_run(jit::vbmi2_features())) return false;
  if (const auto forced = sparse_input_masked_override()) return *forced;
  int64_t nonzeros = 0;
  for (int64_t i = 0; i < out * in; ++i) nonzeros += wq[i] != 0;
  // Per 64 rows of a column: an 8-byte mask, and 4 bytes of offset per chunk.
  const auto weights = static_cast<double>(out) * static_cast<double>(in);
  const double masked = static_cast<double>(nonzeros) + weights / 8.0 + weights / 64.0;
  return masked <= 0.9 * weights;
}

int Int8SparseInputLinear::chunk_rows_for(int64_t out, int threads, bool masked) {
  if (const auto forced = sparse_input_chunk_rows_override()) return *forced;
  if (out < kMinLongRows) return sparse_input_chunk_rows(out, threads);
  // One chunk up to kPageRows rows (the last chunk stores only its rows): a 2560-row weight in
  // one chunk reads 2560-byte column runs, against 2048 and 512 in chunks of 2048 (Zen 4, cold,
  // 2 threads, 40 % zero inputs: 129-137 against 139-142 us; 3072 x 768 59-61 against 68-71).
  return static_cast<int>(std::min<int64_t>(masked ? kMaskedRunRows : kPageRows,
                                            std::bit_ceil(static_cast<uint64_t>(out))));
}

Int8SparseInputLinear::Int8SparseInputLinear(const int8_t* wq, const float* w_scale,
                                             const float* bias, int64_t out, int64_t in,
                                             jit::PostOps post_ops, PoolRef threads)
    : weights_([&] {
        const bool masked = masked_form(wq, out, in);
        return sparse::pack_int8_sparse_input(
            wq, w_scale, bias, out, in, masked,
            chunk_rows_for(out, resolve_threads(threads.threads), masked));
      }()),
      post_ops_(post_ops),
      kernel_(jit::sparse_input_kernel(
          {weights_.masked, weights_.chunk_rows, prefetch_lines(weights_)})),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  for (int residual = 0; residual < 2; ++residual)
    for (jit::TileOutput output :
         {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
      epilogues_[residual][static_cast<int>(output)] =
          jit::row_epilogue({jit::Isa::avx512_vnni, post_ops.activation,
                             post_ops.operand_for(residual == 1), output});
}

void Int8SparseInputLinear::quantize(const float* x, int64_t tokens,
                                     QuantizedInput::Impl& q) const {
  sparse::require(x != nullptr, "forward: x must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const int64_t in = weights_.in, bytes = token_bytes(in);
  q.reserve(tokens * bytes, tokens);
  thread_local std::vector<int8_t> s8;
  s8.resize(static_cast<size_t>(in));
  for (int64_t t = 0; t < tokens; ++t) {
    quantize_rows(x + t * in, 1, in, s8.data(), q.scales.data() + t);
    uint8_t* block = q.x.data() + t * bytes;
    auto* columns = reinterpret_cast<int32_t*>(block + 64);
    auto* values = reinterpret_cast<int8_t*>(block + values_at(in));
    const NonzeroList list = list_nonzero_s8(s8.data(), in, columns, values);
    int64_t n = list.count;
    for (; n % 4 != 0; ++n) {
      columns[n] = 0;
      values[n] = 0;
    }
    std::fill(columns + n, columns + n + 4 * jit::kSparseInputPrefetchQuads, 0);
    TokenInput header{n / 4, 128 * list.sum};
    std::memcpy(block, &header, sizeof header);
  }
  q.form = QuantizedInput::Impl::Form::sparse_input;
  q.tokens = tokens;
  q.in = in;
}

void Int8SparseInputLinear::run(const QuantizedInput::Impl& q, void* y, float y_scale,
                                const float* residual, bool bf16_out) const {
  const sparse::Int8SparseInputWeights& w = weights_;
  sparse::require(reads(q), [&] {
    return "forward: the QuantizedInput was not made by this layer's quantize_input "
           "(in_features " +
           std::to_string(q.in) + ", expected " + std::to_string(w.in) + ")";
  });
  sparse::require(y != nullptr, "forward: y must not be null");
  const jit::TileOutput output = y_scale > 0.0f ? jit::TileOutput::s8
                                 : bf16_out     ? jit::TileOutput::bf16
                                                : jit::TileOutput::f32;
  const jit::RowEpilogueKey key{jit::Isa::avx512_vnni, post_ops_.activation,
                                post_ops_.operand_for(residual != nullptr), output};
  const jit::RowEpilogue* epilogue =
      epilogues_[residual != nullptr][static_cast<int>(output)].get();
  const int64_t y_elem = jit::output_bytes(output);
  const int64_t out = w.out, rows = w.chunk_rows, bytes = token_bytes(w.in);
  const float inv_y_scale = y_scale > 0.0f ? 1.0f / y_scale : 0.0f;
  for (int64_t t = 0; t < q.tokens; ++t) {
    const uint8_t* block = q.x.data() + t * bytes;
    TokenInput header;
    std::memcpy(&header, block, sizeof header);
    // What every kernel call of this token shares: the whole input list, one chunk.
    auto token_args = [&] {
      jit::SparseInputArgs a{};
      a.entries = w.entries.data();
      a.columns = reinterpret_cast<const int32_t*>(block + 64);
      a.x = reinterpret_cast<const int32_t*>(block + values_at(w.in));
      a.quads = header.quads;
      a.chunks = 1;
      a.compensation = header.compensation;
      return a;
    };
    // The epilogue of rows [r0, r0 + n) from their int32 sums.
    auto finish_rows = [&](const int32_t* sums, int64_t r0, int64_t n) {
      jit::apply_row_epilogue(epilogue, key, sums, q.scales[t], w.scales.data() + r0,
                              w.bias.data() + r0, residual ? residual + t * out + r0 : nullptr,
                              static_cast<uint8_t*>(y) + (t * out + r0) * y_elem, n, inv_y_scale);
    };
    if (w.long_chunks()) {
      // Long chunks: the input list in parts over whole chunks (src/input_list_parts.hpp), each
      // column's read one run (dense form: a page): on Zen 4 (cold, 2 threads, 50 % zero inputs;
      // docs/benchmarks-avx512.md) the dense form ran 1.59x / 1.55x oneDNN on 4096 x 4096 /
      // 11008 x 4096 against 1.52x / 1.36x with the threads on halves of each page; the masked
      // form (2:4) 1.84x / 1.59x against 1.58x / 1.46x (medians of three rounds, before its
      // register sums and group prefetch). The masked form's sub-chunks are whole sub-entries.
      thread_local AlignedVector<int32_t> partial;
      run_input_list_parts(
          *arena_, header.quads, w.chunks(), rows, out, w.masked ? w.sub_rows() : 64, partial,
          [&](int64_t q0, int64_t q1, int64_t c, int64_t n, int32_t* sums, int64_t part) {
            jit::SparseInputArgs a = token_args();
            if (w.masked) {
              a.chunk_base = w.offsets.data() + w.first_sub_chunk(c) * w.in;
              a.chunk_stride = w.in * static_cast<int64_t>(sizeof(uint32_t));
            } else {
              a.chunk_base = w.entries.data() + w.entry_offset(c, 0);
              a.column_stride = w.stored_rows(c);
            }
            a.columns += 4 * q0;
            a.x += q0;
            a.quads = q1 - q0;
            a.slices = n / 64;
            a.acc = sums;
            if (part != 0) a.compensation = 0;  // added once, by the first part
            kernel_->run(a);
          },
          finish_rows);
      continue;
    }
    parallel_ranges(*arena_, w.chunks(), [&](int64_t c0, int64_t c1) {
      thread_local AlignedVector<int32_t> acc;
      if (static_cast<int64_t>(acc.size()) < (c1 - c0) * rows)
        acc.resize(static_cast<size_t>((c1 - c0) * rows));
      jit::SparseInputArgs a = token_args();
      if (w.masked) {
        a.chunk_base = w.offsets.data() + c0 * w.in;
        a.chunk_stride = w.in * static_cast<int64_t>(sizeof(uint32_t));
      } else {
        a.chunk_base = w.entries.data() + c0 * w.in * rows;
        a.chunk_stride = w.in * rows;
      }
      a.chunks = c1 - c0;
      a.acc = acc.data();
      kernel_->run(a);
      const int64_t r0 = c0 * rows;
      finish_rows(acc.data(), r0, std::min(c1 * rows, out) - r0);
    });
  }
}

}  // namespace sparq
