// Activation sparsity on bf16 layers: the bf16 sparse-input layout (round trip, both forms, every
// chunk height, rows and columns with tails), the AVX-512 kernel against the portable reference
// bit for bit on random input lists (none, half, all of the columns; dense, 2:4 and unstructured
// weights), and the layer against the fp32 reference on the thresholded, bf16-rounded input with
// every epilogue.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "jit/bf16_sparse_input_kernel.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/bf16_sparse_input_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/input_list.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

enum class WeightKind { dense, two_of_four, unstructured };

float bf16_value(float v) { return sparse::from_bf16(sparse::to_bf16(v)); }

std::vector<float> weight_of(WeightKind kind, int64_t out, int64_t in, uint32_t seed) {
  auto w = test::random_floats(static_cast<size_t>(out * in), seed);
  if (kind == WeightKind::two_of_four) w = sparse::prune_n_m(w, out, in, 2, 4);
  if (kind == WeightKind::unstructured) {
    std::mt19937 rng(seed + 7);
    std::bernoulli_distribution zero(0.8);
    for (auto& v : w)
      if (zero(rng)) v = 0.0f;
  }
  for (auto& v : w) {
    v = bf16_value(v);
    if (kind == WeightKind::dense && v == 0.0f) v = 0.5f;
  }
  return w;
}

struct Shape {
  int64_t out, in;
};
constexpr Shape kShapes[] = {{1, 1}, {5, 7}, {32, 4}, {70, 130}, {256, 64}, {300, 33}, {520, 301}};

TEST(Bf16SparseInputPack, RoundTripBothForms) {
  for (const Shape& s : kShapes)
    for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four, WeightKind::unstructured})
      for (bool masked : {false, true})
        for (int rows : {64, 128, 256, 2048, 4096}) {
          if (!masked && rows > sparse::kBf16SparseInputMaxChunkRows) continue;
          const auto w = weight_of(kind, s.out, s.in, static_cast<uint32_t>(s.out * 31 + s.in));
          const auto p =
              sparse::pack_bf16_sparse_input(w.data(), nullptr, s.out, s.in, masked, rows);
          ASSERT_EQ(sparse::to_dense(p), w) << s.out << "x" << s.in << " masked=" << masked;
          EXPECT_EQ(p.padded_out() % rows, 0);
          if (masked) {
            const int64_t nonzeros =
                std::count_if(w.begin(), w.end(), [](float v) { return v != 0; });
            // A mask per 32 rows of each sub-entry (256 rows in long chunks, up to out's).
            const int64_t sub_rows = std::min(rows, 256);
            EXPECT_EQ(p.sub_chunks(), (s.out + sub_rows - 1) / sub_rows);
            EXPECT_EQ(static_cast<int64_t>(p.entries.size()),
                      2 * nonzeros + p.sub_chunks() * s.in * (sub_rows / 32) * 4 + 64);
            EXPECT_EQ(sparse::bf16_sparse_input_masked_bytes(w.data(), s.out, s.in, rows),
                      static_cast<int64_t>(p.entries.size()) - 64);
          } else {
            // Short chunks store whole chunks; long ones the last chunk's rows up to 64 only.
            const int64_t stored = rows > 256 ? (s.out + 63) / 64 * 64 : p.padded_out();
            EXPECT_EQ(static_cast<int64_t>(p.entries.size()), stored * s.in * 2 + 64);
          }
        }
}

TEST(Bf16SparseInputPack, RejectsBadArguments) {
  const std::vector<float> w(16, 1.0f);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_bf16_sparse_input(w.data(), nullptr, 4, 4, false, 96);
            }).find("chunk_rows must be a power of two in 64..2048, got 96"),
            std::string::npos);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_bf16_sparse_input(w.data(), nullptr, 4, 4, true, 8192);
            }).find("chunk_rows must be a power of two in 64..4096 (masked form), got 8192"),
            std::string::npos);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_bf16_sparse_input(nullptr, nullptr, 4, 4, false, 64);
            }).find("must not be null"),
            std::string::npos);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              jit::bf16_sparse_input_kernel({false, 64, 0});
            }).find("prefetch_lines must be 1..64, got 0"),
            std::string::npos);
}

// A random list of non-zero inputs (bf16 values): each column with probability `density`, then
// the columns the kernel's prefetch reads ahead.
struct InputList {
  std::vector<int32_t> columns;
  std::vector<float> x;
  int64_t count = 0;
};
InputList input_list(int64_t in, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution keep(density);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  InputList l;
  for (int64_t c = 0; c < in; ++c)
    if (keep(rng)) {
      l.columns.push_back(static_cast<int32_t>(c));
      const float v = bf16_value(value(rng));
      l.x.push_back(v == 0.0f ? 1.0f : v);
    }
  l.count = static_cast<int64_t>(l.columns.size());
  l.columns.resize(l.columns.size() + jit::kBf16SparseInputListPadding, 0);
  return l;
}

// A weight of `kind` packed in chunks of `rows`, an input list of `density` and the reference's
// sums of the two (padded_out rows).
struct PackedCase {
  std::vector<float> w;
  sparse::Bf16SparseInputWeights p;
  InputList l;
  std::vector<float> want;
};
PackedCase packed_case(WeightKind kind, int64_t out, int64_t in, bool masked, int rows,
                       double density, uint32_t seed) {
  PackedCase c;
  c.w = weight_of(kind, out, in, seed);
  c.p = sparse::pack_bf16_sparse_input(c.w.data(), nullptr, out, in, masked, rows);
  c.l = input_list(in, density, seed + 11);
  c.want.resize(static_cast<size_t>(c.p.padded_out()));
  sparse::sparse_input_reference(c.p, c.l.columns.data(), c.l.x.data(), c.l.count, 0, c.p.chunks(),
                                 c.want.data());
  return c;
}

TEST(Bf16SparseInputKernel, MatchesReference) {
  for (bool masked : {false, true}) {
    const jit::Bf16SparseInputKernelKey probe{masked, 64, 1};
    if (auto why = test::lane_skip_reason(jit::bf16_sparse_input_features(probe)); !why.empty()) {
      std::cout << "[ skip ] " << (masked ? "masked" : "dense") << " form: " << why << "\n";
      continue;
    }
    test::announce_lane(masked ? "bf16 sparse-input masked" : "bf16 sparse-input dense",
                        jit::bf16_sparse_input_features(probe));
    for (int rows : {64, 128, 256})
      for (const Shape& s : kShapes)
        for (WeightKind kind :
             {WeightKind::dense, WeightKind::two_of_four, WeightKind::unstructured})
          for (double density : {0.0, 0.5, 1.0}) {
            const uint32_t seed = static_cast<uint32_t>(s.out * 7 + s.in + rows);
            const auto [w, p, l, want] =
                packed_case(kind, s.out, s.in, masked, rows, density, seed);
            // The reference against the plain definition on the unpacked weight.
            for (int64_t r = 0; r < s.out; ++r) {
              double sum = 0;
              for (int64_t i = 0; i < l.count; ++i)
                sum += double{w[static_cast<size_t>(r * s.in + l.columns[i])]} * l.x[i];
              ASSERT_NEAR(want[r], sum, 1e-4 * (1 + std::fabs(sum))) << "row " << r;
            }
            // Every chunk range the layer's threads may take.
            for (int64_t c0 = 0; c0 < p.chunks(); c0 += std::max<int64_t>(1, p.chunks() / 2)) {
              const int64_t c1 = p.chunks();
              AlignedVector<float> got(static_cast<size_t>((c1 - c0) * rows), -1.0f);
              jit::Bf16SparseInputArgs a{};
              a.entries = p.entries.data();
              a.chunk_base = masked ? static_cast<const void*>(p.offsets.data() + c0 * s.in)
                                    : p.entries.data() + c0 * s.in * rows * 2;
              a.chunk_stride = masked ? s.in * 4 : s.in * rows * 2;
              a.columns = l.columns.data();
              a.x = l.x.data();
              a.count = l.count;
              a.chunks = c1 - c0;
              a.acc = got.data();
              jit::bf16_sparse_input_kernel({masked, rows, 3})->run(a);
              for (int64_t r = c0 * rows; r < p.padded_out(); ++r)
                ASSERT_EQ(got[static_cast<size_t>(r - c0 * rows)], want[static_cast<size_t>(r)])
                    << s.out << "x" << s.in << " rows=" << rows << " masked=" << masked
                    << " kind=" << static_cast<int>(kind) << " density=" << density
                    << " chunks from " << c0 << ", row " << r;
            }
          }
  }
}

// Long chunks: the dense form (512..2048 rows) runs any 64-row range of a chunk, two inputs per
// pass over its sums in memory; the masked form (512..4096 rows) whole 256-row sub-entries, its
// sums in registers per group of inputs. Bit for bit against the reference (the same sums in list
// order). 4400 rows: a second 4096-row masked chunk of two sub-entries.
TEST(Bf16SparseInputKernel, LongChunksMatchReference) {
  for (bool masked : {false, true}) {
    const jit::Bf16SparseInputKernelKey probe{masked, 512, 1};
    if (auto why = test::lane_skip_reason(jit::bf16_sparse_input_features(probe)); !why.empty()) {
      std::cout << "[ skip ] " << (masked ? "masked" : "dense") << " form: " << why << "\n";
      continue;
    }
    const int64_t granule = masked ? 256 : 64;
    for (int rows : {512, 2048, 4096})
      for (const Shape& s : {Shape{600, 70}, Shape{2100, 33}, Shape{64, 9}, Shape{4400, 12}})
        for (WeightKind kind :
             {WeightKind::dense, WeightKind::two_of_four, WeightKind::unstructured})
          for (double density : {0.0, 0.5, 1.0}) {
            if (rows > (masked ? sparse::kBf16SparseInputMaxMaskedChunkRows
                               : sparse::kBf16SparseInputMaxChunkRows))
              continue;
            if (s.out > 4096 && rows != 4096) continue;  // the tall shape is for 4096-row chunks
            const uint32_t seed = static_cast<uint32_t>(s.out + s.in + rows);
            // At full density more than a group of inputs: whole and partial groups.
            const auto [w, p, l, want] =
                packed_case(kind, s.out, s.in, masked, rows, density, seed);
            const int64_t used = (s.out + granule - 1) / granule * granule;
            for (int64_t unit : {int64_t{rows}, int64_t{256}, int64_t{64}})
              for (int64_t r0 = 0; r0 < used; r0 += unit) {
                const int64_t n = std::min(r0 + unit, used) - r0;
                if (r0 / rows != (r0 + n - 1) / rows) continue;  // units stay within a chunk
                if (n % granule != 0) continue;
                AlignedVector<float> got(static_cast<size_t>(n), -1.0f);
                jit::Bf16SparseInputArgs a{};
                a.entries = p.entries.data();
                if (masked) {
                  a.chunk_base = p.offsets.data() + r0 / 256 * s.in;
                  a.chunk_stride = s.in * 4;
                } else {
                  a.chunk_base = p.entries.data() + p.entry_offset(r0 / rows, 0) + 2 * (r0 % rows);
                  a.column_stride = 2 * p.stored_rows(r0 / rows);
                }
                a.slices = n / 32;
                a.columns = l.columns.data();
                a.x = l.x.data();
                a.count = l.count;
                a.chunks = 1;
                a.acc = got.data();
                jit::bf16_sparse_input_kernel({masked, rows, 5})->run(a);
                for (int64_t r = r0; r < std::min(r0 + n, s.out); ++r)
                  ASSERT_EQ(got[static_cast<size_t>(r - r0)], want[static_cast<size_t>(r)])
                      << s.out << "x" << s.in << " rows=" << rows << " masked=" << masked
                      << " unit " << unit << " from " << r0 << " kind=" << static_cast<int>(kind)
                      << " density=" << density << ", row " << r;
              }
          }
    // The masked form runs whole sub-entries only.
    if (masked) {
      EXPECT_NE(test::message_of<InvalidArgument>([&] {
                  jit::Bf16SparseInputArgs a{};
                  a.slices = 4;
                  jit::bf16_sparse_input_kernel({true, 512, 5})->run(a);
                }).find("slices must be a positive multiple of 8 for long chunks"),
                std::string::npos);
    }
  }
}

// The layer (every epilogue, 1..5 tokens, fp32 / bf16 outputs) against the fp32 reference on the
// thresholded, bf16-rounded input and weight (1030 x 257 and 2048 x 96: long chunks, run in
// units); the kernel is chosen by the expected sparsity.
TEST(Bf16SparseInputLayer, MatchesReferenceOnThresholdedInput) {
  int case_index = 0;
  const bool kernel_here = jit::best_float_isa() >= jit::Isa::avx512;
  for (auto [out, in] : {std::pair<int64_t, int64_t>{70, 130}, {300, 64}, {1030, 257}, {2048, 96}})
    for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four})
      for (Activation act : {Activation::none, Activation::gelu_tanh, Activation::silu})
        for (OperandOp op : {OperandOp::add, OperandOp::multiply}) {
          const uint32_t seed = static_cast<uint32_t>(out + in);
          const auto w = weight_of(kind, out, in, seed);
          const auto bias = test::random_floats(static_cast<size_t>(out), seed + 1);
          LinearOptions o;
          o.dtype = DType::bf16;
          o.activation = act;
          o.operand = op;
          o.threads = 2;
          o.pattern = kind == WeightKind::two_of_four ? Pattern::n_of_m(2, 4) : Pattern::dense();
          const auto x = test::random_floats(static_cast<size_t>(5 * in), seed + 2);
          o.input_threshold = test::threshold_for(x, 0.5);
          // Expected sparsity 0.9, 0.6, 0.4, 0.3 in turn: the kernel runs from 0.4 on 2:4 weights
          // of 1024 rows or more (the masked form's long chunks, where the CPU has VBMI2), from
          // 0.5 on other weights of 1024 rows or more, from 0.7 on smaller ones.
          const float expected[4] = {0.9f, 0.6f, 0.4f, 0.3f};
          o.expected_input_sparsity = expected[case_index++ % 4];
          const bool masked_long = out >= 1024 && kind == WeightKind::two_of_four &&
                                   jit::can_run(jit::bf16_sparse_input_features({true, 512, 1}));
          const float needed = masked_long ? 0.4f : out >= 1024 ? 0.5f : 0.7f;
          const bool skipping = o.expected_input_sparsity >= needed;
          auto lin = SparseLinear::pack(w.data(), out, in, bias.data(), o);
          if (kernel_here) {
            EXPECT_EQ(lin.info().decode_kernel == "jit:bf16-sparse-input-decode:avx512", skipping)
                << lin.info().decode_kernel;
          }
          const auto residual = test::random_floats(static_cast<size_t>(5 * out), seed + 3);
          for (int64_t tokens = 1; tokens <= 5; ++tokens) {
            std::vector<float> used(x.begin(), x.begin() + tokens * in);
            for (float& v : used) {
              if (tokens <= 4 && std::fabs(v) < o.input_threshold) v = 0.0f;  // > 4: kept
              v = bf16_value(v);
            }
            std::vector<float> want(static_cast<size_t>(tokens * out));
            sparse::linear_f32(used.data(), tokens, w.data(), out, in,
                               {bias.data(), act, residual.data(), op}, want.data());
            std::vector<float> y(want.size());
            lin.forward(x.data(), tokens, y.data(), residual.data());
            test::expect_close(y, want, 1e-4, "fp32 output");
            std::vector<uint16_t> yb(y.size());
            lin.forward_bf16(x.data(), tokens, yb.data(), residual.data());
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(sparse::from_bf16(yb[i]), want[i], 1e-2 * (1 + std::fabs(want[i])));
          }
        }
}

// The list of a token's non-zero inputs after rounding to bf16: the portable twin against its
// definition, the AVX-512 one against the portable, bit for bit (entries that round to zero,
// signed zeros, denormals, infinities and NaNs in body and tail positions; nothing written past
// the count).
TEST(Bf16InputList, VectorListMatchesPortable) {
  const bool vector = jit::isa_available(jit::Isa::avx512);
  if (!vector) std::cout << "[ skip ] AVX-512 input list: this CPU lacks AVX-512\n";
  const float specials[] = {0.0f,      -0.0f,         1e-45f,        -1e-45f,
                            1e-40f,    1.00390625f,   1.01171875f,   INFINITY,
                            -INFINITY, std::nanf(""), -std::nanf("")};
  for (int64_t in : {1, 7, 16, 17, 33, 2048, 5633})
    for (double density : {0.0, 0.5, 1.0}) {
      const auto seed = static_cast<uint32_t>(in * 10 + static_cast<int64_t>(density * 10));
      auto x = test::random_floats(static_cast<size_t>(in), seed);
      std::mt19937 rng(seed);
      std::bernoulli_distribution keep(density);
      for (float& v : x)
        if (!keep(rng)) v = 0.0f;
      for (size_t i = 0; i < std::size(specials) && density > 0.0; ++i)
        x[(i * 7919) % x.size()] = specials[i];
      std::vector<int32_t> want_columns;
      std::vector<float> want_values;
      for (int64_t c = 0; c < in; ++c) {
        const float v = sparse::from_bf16(sparse::to_bf16(x[c]));
        if (v == 0.0f) continue;
        want_columns.push_back(static_cast<int32_t>(c));
        want_values.push_back(v);
      }
      const auto check = [&](auto list_fn, const char* what) {
        std::vector<int32_t> columns(static_cast<size_t>(in + 16), -7);
        std::vector<float> values(static_cast<size_t>(in + 16), 99.0f);
        const int64_t count = list_fn(x.data(), in, columns.data(), values.data());
        test::expect_input_list(count, want_columns, want_values, columns, values, -7, 99.0f,
                                std::string(what) + " in=" + std::to_string(in) +
                                    " density=" + std::to_string(density));
      };
      check(detail::list_nonzero_bf16_portable, "portable");
      if (vector) check(detail::list_nonzero_bf16_avx512, "avx512");
    }
}

// The masked form in long chunks, which the layer picks for a 2:4 weight of 1024 rows or more:
// 4400 rows in chunks of 4096 (the second of two sub-entries), the input list split over 1-3
// threads, 30-90 % of the inputs zero (whole and partial groups of inputs).
TEST(Bf16SparseInputLayer, MaskedLongChunks) {
  if (jit::best_float_isa() < jit::Isa::avx512 ||
      !jit::can_run(jit::bf16_sparse_input_features({true, 512, 1})))
    GTEST_SKIP() << "needs AVX-512 and VBMI2";
  const int64_t out = 4400, in = 72;
  const auto w = weight_of(WeightKind::two_of_four, out, in, 51);
  const auto bias = test::random_floats(static_cast<size_t>(out), 52);
  const auto x = test::random_floats(static_cast<size_t>(2 * in), 53);
  const auto packed = sparse::pack_bf16_sparse_input(w.data(), bias.data(), out, in, true, 4096);
  for (double zero : {0.3, 0.5, 0.9})
    for (int threads = 1; threads <= 3; ++threads) {
      LinearOptions o;
      o.dtype = DType::bf16;
      o.threads = threads;
      o.pattern = Pattern::n_of_m(2, 4);
      o.activation = Activation::silu;
      o.input_threshold = test::threshold_for(x, zero);
      o.expected_input_sparsity = 0.9f;
      auto lin = SparseLinear::pack(w.data(), out, in, bias.data(), o);
      ASSERT_EQ(lin.info().decode_kernel, "jit:bf16-sparse-input-decode:avx512");
      EXPECT_EQ(lin.info().decode_packed_bytes, packed.bytes());
      for (int64_t tokens = 1; tokens <= 2; ++tokens) {
        std::vector<float> used(x.begin(), x.begin() + tokens * in);
        for (float& v : used) v = bf16_value(std::fabs(v) < o.input_threshold ? 0.0f : v);
        std::vector<float> want(static_cast<size_t>(tokens * out));
        sparse::linear_f32(used.data(), tokens, w.data(), out, in, {bias.data(), Activation::silu},
                           want.data());
        std::vector<float> y(want.size());
        lin.forward(x.data(), tokens, y.data());
        test::expect_close(y, want, 1e-4,
                           "masked long chunks, " + std::to_string(threads) + " threads, " +
                               std::to_string(zero) + " zero");
      }
    }
}

TEST(Bf16SparseInputLayer, AllInputsBelowThreshold) {
  const int64_t out = 40, in = 24;
  const auto w = weight_of(WeightKind::dense, out, in, 3);
  const auto bias = test::random_floats(static_cast<size_t>(out), 4);
  LinearOptions o;
  o.dtype = DType::bf16;
  o.input_threshold = 10.0f;  // above every |x|
  o.expected_input_sparsity = 1.0f;
  o.activation = Activation::relu;
  auto lin = SparseLinear::pack(w.data(), out, in, bias.data(), o);
  const auto x = test::random_floats(static_cast<size_t>(in), 5);
  std::vector<float> y(static_cast<size_t>(out));
  lin.forward(x.data(), 1, y.data());
  for (int64_t r = 0; r < out; ++r) EXPECT_EQ(y[r], std::max(0.0f, bias[r])) << r;
}

}  // namespace
}  // namespace sparq
