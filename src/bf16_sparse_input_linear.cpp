#include "src/bf16_sparse_input_linear.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "jit/cpu_features.hpp"
#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "src/aligned.hpp"
#include "src/sparse_input_form.hpp"

namespace sparq {
namespace {

// The masked form's mean entry in cache lines, plus one for the entries that straddle a line.
int prefetch_lines(const sparse::Bf16SparseInputWeights& w) {
  if (!w.masked) return w.chunk_rows / 32;
  const double mean = static_cast<double>(w.entries.size()) / static_cast<double>(w.offsets.size());
  return std::clamp(static_cast<int>(std::ceil(mean / 64.0)) + 1, 1, 64);
}

jit::Bf16SparseInputKernelKey key_of(const sparse::Bf16SparseInputWeights& w) {
  return {w.masked, w.chunk_rows, prefetch_lines(w)};
}

jit::RowEpilogueKey epilogue_key(const jit::PostOps& post_ops, bool residual, bool bf16_out) {
  return {jit::Isa::avx512, post_ops.activation, post_ops.operand_for(residual),
          bf16_out ? jit::TileOutput::bf16 : jit::TileOutput::f32, true};
}

}  // namespace

bool Bf16SparseInputLinear::masked_form(const float* w, int64_t out, int64_t in, int chunk_rows) {
  if (!jit::can_run(jit::bf16_sparse_input_features({true, chunk_rows, 1}))) return false;
  if (const auto forced = sparse_input_masked_override()) return *forced;
  const double masked =
      static_cast<double>(sparse::bf16_sparse_input_masked_bytes(w, out, in, chunk_rows)) +
      4.0 * static_cast<double>(sparse::ceil_div(out, chunk_rows) * in);
  return masked <= 0.9 * 2.0 * static_cast<double>(out) * static_cast<double>(in);
}

Bf16SparseInputLinear::Bf16SparseInputLinear(const float* w, const float* bias, int64_t out,
                                             int64_t in, jit::PostOps post_ops, PoolRef threads)
    : weights_([&] {
        sparse::require(w != nullptr, "Bf16SparseInputLinear: the weight must not be null");
        const int rows = sparse_input_chunk_rows(out, resolve_threads(threads.threads));
        return sparse::pack_bf16_sparse_input(w, bias, out, in, masked_form(w, out, in, rows),
                                              rows);
      }()),
      kernel_(jit::bf16_sparse_input_kernel(key_of(weights_))),
      post_ops_(post_ops),
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
  columns.resize(static_cast<size_t>(in + jit::kBf16SparseInputPrefetchAhead));
  values.resize(static_cast<size_t>(in));
  for (int64_t t = 0; t < tokens; ++t) {
    // Branch-free compaction: every column is written, the count moves on non-zeros only.
    int64_t n = 0;
    for (int64_t c = 0; c < in; ++c) {
      const float v = sparse::from_bf16(sparse::to_bf16(x[t * in + c]));
      columns[static_cast<size_t>(n)] = static_cast<int32_t>(c);
      values[static_cast<size_t>(n)] = v;
      n += v != 0.0f;
    }
    std::fill(columns.begin() + n, columns.begin() + n + jit::kBf16SparseInputPrefetchAhead, 0);
    const int32_t* list = columns.data();
    const float* list_x = values.data();
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

}  // namespace sparq
