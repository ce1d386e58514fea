#include "src/bf16_sparse_input_linear.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/input_list.hpp"
#include "src/input_list_parts.hpp"
#include "src/sparse_input_form.hpp"

namespace sparq {
namespace {

// The masked form's mean entry in cache lines, plus one for the entries that straddle a line
// (long chunks: the mean sub-entry, rounded up; the next sub-entry's prefetch covers the rest of a
// run's last line, as in the int8 layer).
int prefetch_lines(const sparse::Bf16SparseInputWeights& w) {
  if (!w.masked) return std::min(w.chunk_rows / 32, 8);
  const double mean = static_cast<double>(w.entries.size()) / static_cast<double>(w.offsets.size());
  return std::clamp(static_cast<int>(std::ceil(mean / 64.0)) + (w.long_chunks() ? 0 : 1), 1, 64);
}

jit::Bf16SparseInputKernelKey key_of(const sparse::Bf16SparseInputWeights& w) {
  return {w.masked, w.chunk_rows, prefetch_lines(w)};
}

jit::RowEpilogueKey epilogue_key(const jit::PostOps& post_ops, bool residual, bool bf16_out) {
  return {jit::Isa::avx512, post_ops.activation, post_ops.operand_for(residual),
          bf16_out ? jit::TileOutput::bf16 : jit::TileOutput::f32, true};
}

}  // namespace

// Zen 4, cold weights, 4096 x 4096 and 11008 x 4096, 1 and 2 threads (docs/benchmarks-avx512.md):
// with 2048-row chunks the dense form ran 1.26-1.73x oneDNN's bf16 GEMV at 50 % zero inputs and
// 2.37-2.90x at 75 %, where 256-row chunks (512-byte entries) ran 0.94-1.13x and 1.57-2.00x, and
// 1024-row chunks 1.13-1.24x and 2.02-2.20x; with every input non-zero 2048 rows cost 0.83-0.96x
// oneDNN, 256 rows 1.09-1.42x. 2:4 weights in the dense form with 2048-row chunks ran
// 1.26-1.90x / 2.40-3.82x at 50 % / 75 %, in the masked form 1.06-1.27x / 1.80-2.42x.
Bf16SparseInputLinear::Plan Bf16SparseInputLinear::plan(const float* w, int64_t out, int64_t in,
                                                        int threads) {
  Plan p;
  const bool vpexpandw = jit::can_run(jit::bf16_sparse_input_features({true, 64, 1}));
  // The masked form where its bytes (offsets included) are at most 90 % of the dense form's.
  auto masked_pays = [&](int chunk_rows) {
    const double masked =
        static_cast<double>(sparse::bf16_sparse_input_masked_bytes(w, out, in, chunk_rows)) +
        4.0 * static_cast<double>(sparse::Bf16SparseInputWeights::sub_chunks_of(out, chunk_rows) *
                                  in);
    return masked <= 0.9 * 2.0 * static_cast<double>(out) * static_cast<double>(in);
  };
  if (out >= kMinLongRows) {
    // Long chunks: the dense form's up to a page per column, the masked form's one chunk up to
    // kMaskedRunRows (its column runs as long as they go).
    const int masked_rows = static_cast<int>(
        std::min<int64_t>(kMaskedRunRows, std::bit_ceil(static_cast<uint64_t>(out))));
    p.masked = vpexpandw && sparse_input_masked_override().value_or(masked_pays(masked_rows));
    p.chunk_rows = p.masked ? masked_rows
                            : static_cast<int>(std::min<int64_t>(
                                  kPageRows, std::bit_floor(static_cast<uint64_t>(out))));
  } else {
    p.chunk_rows = sparse_input_chunk_rows(out, threads);
    p.masked = vpexpandw && sparse_input_masked_override().value_or(masked_pays(p.chunk_rows));
  }
  p.chunk_rows = sparse_input_chunk_rows_override().value_or(p.chunk_rows);
  return p;
}

Bf16SparseInputLinear::Bf16SparseInputLinear(const float* w, const float* bias, int64_t out,
                                             int64_t in, jit::PostOps post_ops, PoolRef threads)
    : weights_([&] {
        sparse::require(w != nullptr, "Bf16SparseInputLinear: the weight must not be null");
        const Plan p = plan(w, out, in, resolve_threads(threads.threads));
        return sparse::pack_bf16_sparse_input(w, bias, out, in, p.masked, p.chunk_rows);
      }()),
      kernel_(jit::bf16_sparse_input_kernel(key_of(weights_))),
      post_ops_(post_ops),
      unit_rows_(
          sparse_input_unit_rows(out, weights_.chunk_rows, resolve_threads(threads.threads))),
      arena_(&arena_for(resolve_threads(threads.threads), threads.pool)) {
  for (int residual = 0; residual < 2; ++residual)
    for (int bf16_out = 0; bf16_out < 2; ++bf16_out)
      epilogues_[residual][bf16_out] =
          jit::row_epilogue(epilogue_key(post_ops, residual == 1, bf16_out == 1));
}

void Bf16SparseInputLinear::run(const float* x, int64_t tokens, void* y, const float* residual,
                                bool bf16_out) const {
  const sparse::Bf16SparseInputWeights& w = weights_;
  sparse::require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  sparse::require(tokens > 0, [&] {
    return "forward: tokens must be positive, got " + std::to_string(tokens);
  });
  const jit::RowEpilogueKey key = epilogue_key(post_ops_, residual != nullptr, bf16_out);
  const jit::RowEpilogue* epilogue = epilogues_[residual != nullptr][bf16_out].get();
  const int64_t y_elem = bf16_out ? 2 : 4, out = w.out, in = w.in, rows = w.chunk_rows;
  // The token's non-zero inputs (bf16-rounded), then the columns the kernel's prefetch reads
  // ahead.
  thread_local std::vector<int32_t> columns;
  thread_local std::vector<float> values;
  columns.resize(static_cast<size_t>(in + jit::kBf16SparseInputListPadding));
  values.resize(static_cast<size_t>(in));
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t n = list_nonzero_bf16(x + t * in, in, columns.data(), values.data());
    std::fill(columns.begin() + n, columns.begin() + n + jit::kBf16SparseInputListPadding, 0);
    const int32_t* list = columns.data();
    const float* list_x = values.data();
    if (w.long_chunks() && w.masked) {
      run_masked_long(list, list_x, n, t, residual, y, key, epilogue, y_elem);
      continue;
    }
    if (w.long_chunks()) {
      // Long chunks: units of unit_rows_ rows (within one chunk) over the threads.
      const int64_t used = sparse::ceil_div(out, 64) * 64;
      parallel_ranges(*arena_, sparse::ceil_div(used, unit_rows_), [&](int64_t u0, int64_t u1) {
        thread_local AlignedVector<float> acc;
        if (static_cast<int64_t>(acc.size()) < unit_rows_)
          acc.resize(static_cast<size_t>(unit_rows_));
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t r0 = u * unit_rows_, m = std::min(r0 + unit_rows_, used) - r0;
          jit::Bf16SparseInputArgs a{};
          a.entries = w.entries.data();
          a.chunk_base = w.entries.data() + w.entry_offset(r0 / rows, 0) + 2 * (r0 % rows);
          a.column_stride = 2 * w.stored_rows(r0 / rows);
          a.slices = m / sparse::kBf16SparseInputSlice;
          a.columns = list;
          a.x = list_x;
          a.count = n;
          a.chunks = 1;
          a.acc = acc.data();
          kernel_->run(a);
          jit::apply_row_epilogue(epilogue, key, acc.data(), 1.0f, nullptr, w.bias.data() + r0,
                                  residual ? residual + t * out + r0 : nullptr,
                                  static_cast<uint8_t*>(y) + (t * out + r0) * y_elem,
                                  std::min(m, out - r0), 0.0f);
        }
      });
      continue;
    }
    parallel_ranges(*arena_, w.chunks(), [&](int64_t c0, int64_t c1) {
      thread_local AlignedVector<float> acc;
      if (static_cast<int64_t>(acc.size()) < (c1 - c0) * rows)
        acc.resize(static_cast<size_t>((c1 - c0) * rows));
      jit::Bf16SparseInputArgs a{};
      a.entries = w.entries.data();
      if (w.masked) {
        a.chunk_base = w.offsets.data() + c0 * in;
        a.chunk_stride = in * static_cast<int64_t>(sizeof(uint32_t));
      } else {
        a.chunk_base = w.entries.data() + c0 * in * rows * 2;
        a.chunk_stride = in * rows * 2;
      }
      a.columns = list;
      a.x = list_x;
      a.count = n;
      a.chunks = c1 - c0;
      a.acc = acc.data();
      kernel_->run(a);
      const int64_t r0 = c0 * rows, m = std::min(c1 * rows, out) - r0;
      jit::apply_row_epilogue(epilogue, key, acc.data(), 1.0f, nullptr, w.bias.data() + r0,
                              residual ? residual + t * out + r0 : nullptr,
                              static_cast<uint8_t*>(y) + (t * out + r0) * y_elem, m, 0.0f);
    });
  }
}

void Bf16SparseInputLinear::run_masked_long(const int32_t* list, const float* list_x, int64_t n,
                                            int64_t t, const float* residual, void* y,
                                            const jit::RowEpilogueKey& key,
                                            const jit::RowEpilogue* epilogue,
                                            int64_t y_elem) const {
  const sparse::Bf16SparseInputWeights& w = weights_;
  const int64_t out = w.out;
  thread_local AlignedVector<float> partial;
  run_input_list_parts(
      *arena_, n, w.chunks(), w.chunk_rows, out, w.sub_rows(), partial,
      [&](int64_t first, int64_t last, int64_t c, int64_t rows, float* sums, int64_t) {
        jit::Bf16SparseInputArgs a{};
        a.entries = w.entries.data();
        a.chunk_base = w.offsets.data() + w.first_sub_chunk(c) * w.in;
        a.chunk_stride = w.in * static_cast<int64_t>(sizeof(uint32_t));
        a.columns = list + first;
        a.x = list_x + first;
        a.count = last - first;
        a.chunks = 1;
        a.slices = rows / sparse::kBf16SparseInputSlice;
        a.acc = sums;
        kernel_->run(a);
      },
      [&](const float* sums, int64_t r0, int64_t rows) {
        jit::apply_row_epilogue(epilogue, key, sums, 1.0f, nullptr, w.bias.data() + r0,
                                residual ? residual + t * out + r0 : nullptr,
                                static_cast<uint8_t*>(y) + (t * out + r0) * y_elem, rows, 0.0f);
      });
}

}  // namespace sparq
