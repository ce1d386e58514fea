// sparq-column-runs: how fast the int8 sparse-input decode kernel streams a weight's column runs
// when a decode step reads only some of the columns, and in which order. One thread, one kernel
// call per timing over a 2:4 weight in the masked layout (or unpruned, dense layout); the caches
// are flushed by a sweep over a buffer larger than the last-level cache before each call (or the
// same few columns are read again and again, --from l1). Prints the median microseconds per call
// and the bytes of the runs it read per second. A measuring tool for the layout's choices
// (docs/benchmarks-avx512.md, "what a skipped column costs the stream"), not part of the tests.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/median.hpp"
#include "jit/int8_sparse_input_kernel.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_sparse_input_pack.hpp"

namespace {

using namespace sparq;

// A 2:4 weight (two of each four inputs of a row, at random) or an unpruned one, values in
// 1..100 with random signs.
std::vector<int8_t> make_weight(int64_t out, int64_t in, bool two_of_four, std::mt19937& rng) {
  std::vector<int8_t> w(static_cast<size_t>(out * in));
  auto value = [&] { return static_cast<int8_t>((1 + rng() % 100) * (rng() % 2 ? 1 : -1)); };
  for (int64_t r = 0; r < out; ++r)
    for (int64_t g = 0; g < in; g += 4) {
      const unsigned a = rng() % 4, b = (a + 1 + rng() % 3) % 4;
      for (unsigned i = 0; i < 4 && g + i < in; ++i)
        w[static_cast<size_t>(r * in + g + i)] =
            !two_of_four || i == a || i == b ? value() : int8_t{0};
    }
  return w;
}

// The columns a call reads: `keep` of the `in` columns, chosen and ordered as `order` says.
std::vector<int32_t> columns_for(const std::string& order, int64_t in, double keep,
                                 std::mt19937& rng) {
  std::vector<int32_t> c;
  const auto count = static_cast<int64_t>(keep * static_cast<double>(in));
  if (order == "in-order" || order == "shuffled") {
    for (int64_t i = 0; i < count; ++i) c.push_back(static_cast<int32_t>(i));
    if (order == "shuffled") std::shuffle(c.begin(), c.end(), rng);
  } else if (order == "random") {
    std::vector<int32_t> all(static_cast<size_t>(in));
    for (int64_t i = 0; i < in; ++i) all[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    std::shuffle(all.begin(), all.end(), rng);
    c.assign(all.begin(), all.begin() + count);
    std::sort(c.begin(), c.end());  // as a layer lists a token's non-zero inputs
  } else if (order == "every-other" || order == "pairs" || order == "runs16") {
    const int64_t run = order == "every-other" ? 1 : order == "pairs" ? 2 : 16;
    for (int64_t i = 0; i < in; i += 2 * run)
      for (int64_t j = i; j < std::min(i + run, in); ++j) c.push_back(static_cast<int32_t>(j));
  } else {
    throw InvalidArgument(
        "--order must be in-order, shuffled, random, every-other, pairs or "
        "runs16, got '" +
        order + "'");
  }
  if (c.empty()) throw InvalidArgument("--keep leaves no column to read");
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sparq-column-runs: the int8 sparse-input kernel over some of a weight's columns"};
  int64_t out = 4096, in = 2048;
  int chunk_rows = 4096, calls = 60;
  double keep = 0.5;
  std::string order = "random", from = "cold", pattern = "2:4";
  app.add_option("--out", out, "output rows (a multiple of --chunk-rows)")->capture_default_str();
  app.add_option("--in", in, "input columns")->capture_default_str();
  app.add_option("--chunk-rows", chunk_rows, "the layout's chunk height")->capture_default_str();
  app.add_option("--keep", keep, "fraction of the columns read (in-order, shuffled, random)")
      ->capture_default_str();
  app.add_option("--order", order,
                 "which columns, in which order: in-order, shuffled, random, every-other, pairs, "
                 "runs16")
      ->capture_default_str();
  app.add_option("--from", from, "cold (caches flushed before each call) or l1 (8 columns reused)")
      ->capture_default_str();
  app.add_option("--pattern", pattern, "2:4 (masked layout) or dense (dense layout)")
      ->capture_default_str();
  app.add_option("--calls", calls, "timed calls")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (pattern != "2:4" && pattern != "dense")
      throw InvalidArgument("--pattern must be 2:4 or dense, got '" + pattern + "'");
    if (from != "cold" && from != "l1")
      throw InvalidArgument("--from must be cold or l1, got '" + from + "'");
    if (out <= 0 || in <= 0 || calls <= 0 || out % chunk_rows != 0)
      throw InvalidArgument(
          "--out must be a positive multiple of --chunk-rows, --in and --calls "
          "positive");
    const bool masked = pattern == "2:4";
    std::mt19937 rng(1);
    const auto w = make_weight(out, in, masked, rng);
    const std::vector<float> scale(static_cast<size_t>(out), 1.0f);
    const auto p = sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, out, in, masked,
                                                  chunk_rows);
    std::vector<int32_t> columns = columns_for(order, in, keep, rng);
    if (from == "l1")
      for (size_t i = 0; i < columns.size(); ++i) columns[i] = static_cast<int32_t>(i % 8);
    // What a call reads of the entries: each column's runs (masked: each sub-entry's masks and
    // values, found from its masks).
    auto sub_entry_bytes = [&](int64_t offset) {
      const int slices = p.sub_rows() / 64;
      int64_t n = 8 * slices;
      for (int s = 0; s < slices; ++s) {
        uint64_t mask;
        std::memcpy(&mask, p.entries.data() + offset + 8 * s, sizeof mask);
        n += std::popcount(mask);
      }
      return n;
    };
    int64_t bytes = 0;
    for (int32_t c : columns)
      for (int64_t k = 0; k < p.chunks(); ++k) {
        if (!masked) {
          bytes += p.stored_rows(k);
          continue;
        }
        for (int64_t sc = p.first_sub_chunk(k); sc < p.end_sub_chunk(k); ++sc)
          bytes += sub_entry_bytes(p.offsets[static_cast<size_t>(sc * in + c)]);
      }
    while (columns.size() % 4 != 0) columns.push_back(columns.front());
    const int64_t quads = static_cast<int64_t>(columns.size()) / 4;
    for (int i = 0; i < 4 * jit::kSparseInputPrefetchQuads; ++i) columns.push_back(columns[0]);
    const std::vector<int32_t> x(static_cast<size_t>(quads), 0x01010101);
    AlignedVector<int32_t> acc(static_cast<size_t>(chunk_rows));
    // Three lines ahead per column in the masked form: what the layer takes for a 2:4 weight's
    // 160-byte sub-entries.
    const auto kernel = jit::sparse_input_kernel({masked, chunk_rows, 3});
    std::vector<char> sweep(from == "cold" ? size_t{256} << 20 : 0, 1);
    std::vector<double> us;
    int64_t sink = 0;
    for (int call = 0; call < calls + 2; ++call) {
      for (size_t i = 0; i < sweep.size(); i += 64) sink += sweep[i]++;
      asm volatile("" : : "r"(sink) : "memory");  // the sweep is not optimized away
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t k = 0; k < p.chunks(); ++k) {
        jit::SparseInputArgs a{};
        a.entries = p.entries.data();
        if (masked) {
          a.chunk_base = p.offsets.data() + p.first_sub_chunk(k) * in;
          a.chunk_stride = in * static_cast<int64_t>(sizeof(uint32_t));
        } else {
          a.chunk_base = p.entries.data() + p.entry_offset(k, 0);
          a.column_stride = p.stored_rows(k);
        }
        a.columns = columns.data();
        a.x = x.data();
        a.quads = quads;
        a.chunks = 1;
        a.slices = p.stored_rows(k) / 64;
        a.acc = acc.data();
        kernel->run(a);
      }
      const std::chrono::duration<double, std::micro> t = std::chrono::steady_clock::now() - t0;
      if (call >= 2) us.push_back(t.count());  // two warm-up calls
    }
    const double median_us = bench::median(us);
    std::printf(
        "%s %lld x %lld, chunks of %d rows, %s columns (%zu), %s: %.1f us per call "
        "(median of %d), %.2f GB/s of column runs\n",
        pattern.c_str(), static_cast<long long>(out), static_cast<long long>(in), chunk_rows,
        order.c_str(), static_cast<size_t>(quads * 4), from.c_str(), median_us, calls,
        static_cast<double>(bytes) / median_us / 1e3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq-column-runs: %s\n", e.what());
    return 1;
  }
  return 0;
}
