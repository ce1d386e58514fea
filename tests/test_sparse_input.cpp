// Activation sparsity at decode: the sparse-input layout (round trip, both forms, every chunk
// height, rows and columns with tails), the AVX-512 kernel against the portable reference on
// random input lists (none, half, all of the columns; dense, 2:4, 16x1 and unstructured weights),
// and the layer against the int8 reference on the thresholded input with every epilogue.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <random>
#include <string>

#include "jit/cpu_tuning.hpp"
#include "jit/int8_sparse_input_kernel.hpp"
#include "lane.hpp"
#include "sparq/error.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/int8_sparse_input_pack.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "src/input_list.hpp"
#include "src/int8_sparse_input_linear.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

enum class WeightKind { dense, two_of_four, rows16, unstructured };

std::vector<int8_t> weight_of(WeightKind kind, int64_t out, int64_t in, uint32_t seed) {
  auto w = test::random_int8(static_cast<size_t>(out * in), seed);
  std::mt19937 rng(seed + 7);
  switch (kind) {
    case WeightKind::dense:
      std::replace(w.begin(), w.end(), int8_t{0}, int8_t{1});
      break;
    case WeightKind::two_of_four: {
      std::vector<float> f(w.begin(), w.end());
      f = sparse::prune_n_m(f, out, in, 2, 4);
      for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(f[i]);
      break;
    }
    case WeightKind::rows16:
      test::zero_row_blocks(w, out, in, 16, 0.7, seed + 3);
      break;
    case WeightKind::unstructured: {
      std::bernoulli_distribution zero(0.8);
      for (auto& v : w)
        if (zero(rng)) v = 0;
      break;
    }
  }
  return w;
}

struct Shape {
  int64_t out, in;
};
constexpr Shape kShapes[] = {{1, 1}, {5, 7}, {64, 4}, {70, 130}, {256, 64}, {300, 33}, {520, 301}};

TEST(SparseInputPack, RoundTripBothForms) {
  for (const Shape& s : kShapes)
    for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four, WeightKind::unstructured})
      for (bool masked : {false, true})
        for (int rows : {64, 128, 256, 512, 4096, 8192}) {
          if (!masked && rows > sparse::kSparseInputMaxChunkRows) continue;
          const auto w = weight_of(kind, s.out, s.in, static_cast<uint32_t>(s.out * 31 + s.in));
          const std::vector<float> scale(static_cast<size_t>(s.out), 0.5f);
          const auto p = sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, s.out,
                                                        s.in, masked, rows);
          ASSERT_EQ(sparse::to_dense(p), w) << s.out << "x" << s.in << " masked=" << masked;
          EXPECT_EQ(p.padded_out() % rows, 0);
          if (masked) {
            const int64_t nonzeros = std::count_if(w.begin(), w.end(), [](int8_t v) { return v; });
            // A mask per 64 rows of each sub-entry (256 rows in long chunks, up to out's).
            const int64_t sub_rows = std::min(rows, 256);
            EXPECT_EQ(p.sub_chunks(), (s.out + sub_rows - 1) / sub_rows);
            EXPECT_EQ(static_cast<int64_t>(p.entries.size()),
                      nonzeros + p.sub_chunks() * s.in * (sub_rows / 64) * 8 + 64);
          } else {
            // Short chunks store whole chunks; long ones the last chunk's rows up to 64 only.
            const int64_t stored = rows > 256 ? (s.out + 63) / 64 * 64 : p.padded_out();
            EXPECT_EQ(static_cast<int64_t>(p.entries.size()), stored * s.in + 64);
          }
        }
}

TEST(SparseInputPack, RejectsBadArguments) {
  std::vector<int8_t> w(4 * 4, 1);
  w[6] = -128;
  const std::vector<float> scale(4, 1.0f);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, 4, 4, true, 64);
            }).find("weight[1][2] is -128"),
            std::string::npos);
  w[6] = 0;
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, 4, 4, false, 96);
            }).find("chunk_rows must be a power of two in 64..4096, got 96"),
            std::string::npos);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, 4, 4, false, 8192);
            }).find("chunk_rows must be a power of two in 64..4096, got 8192"),
            std::string::npos);
  EXPECT_NE(test::message_of<InvalidArgument>([&] {
              sparse::pack_int8_sparse_input(w.data(), scale.data(), nullptr, 4, 4, true, 16384);
            }).find("chunk_rows must be a power of two in 64..8192 (masked form), got 16384"),
            std::string::npos);
}

// A random list of non-zero inputs: each column with probability `density`, padded to a multiple
// of 4 with column 0 and value 0, as the layer makes it.
struct InputList {
  std::vector<int32_t> columns;
  std::vector<int8_t> x;
};
InputList input_list(int64_t in, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::bernoulli_distribution keep(density);
  std::uniform_int_distribution<int> value(-127, 127);
  InputList l;
  for (int64_t c = 0; c < in; ++c)
    if (keep(rng)) {
      l.columns.push_back(static_cast<int32_t>(c));
      int v = value(rng);
      l.x.push_back(static_cast<int8_t>(v == 0 ? 1 : v));
    }
  while (l.columns.size() % 4 != 0) {
    l.columns.push_back(0);
    l.x.push_back(0);
  }
  return l;
}
// The kernel's view: the list then the columns its prefetch reads ahead.
std::vector<int32_t> with_prefetch_reach(std::vector<int32_t> columns) {
  columns.resize(columns.size() + 4 * jit::kSparseInputPrefetchQuads, 0);
  return columns;
}

// One kernel test case: a weight of `kind` packed in a form, an input list, and the reference's
// sums for every row of the packed weight.
struct KernelCase {
  std::vector<int8_t> w;
  sparse::Int8SparseInputWeights p;
  InputList l;
  int64_t count;
  std::vector<int32_t> reach;  // l.columns and the prefetch's read-ahead
  std::vector<int32_t> want;
};
KernelCase make_case(WeightKind kind, const Shape& s, bool masked, int rows, double density,
                     uint32_t seed) {
  KernelCase c{weight_of(kind, s.out, s.in, seed), {}, {}, 0, {}, {}};
  const std::vector<float> scale(static_cast<size_t>(s.out), 1.0f);
  c.p =
      sparse::pack_int8_sparse_input(c.w.data(), scale.data(), nullptr, s.out, s.in, masked, rows);
  c.l = input_list(s.in, density, seed + 11);
  c.count = static_cast<int64_t>(c.l.columns.size());
  c.reach = with_prefetch_reach(c.l.columns);
  c.want.resize(static_cast<size_t>(c.p.padded_out()));
  sparse::sparse_input_reference(c.p, c.l.columns.data(), c.l.x.data(), c.count, 0, c.p.chunks(),
                                 c.want.data());
  return c;
}

TEST(SparseInputKernel, MatchesReference) {
  for (bool masked : {false, true}) {
    const jit::SparseInputKernelKey probe{masked, 64};
    if (auto why = test::lane_skip_reason(jit::sparse_input_features(probe)); !why.empty()) {
      std::cout << "[ skip ] " << (masked ? "masked" : "dense") << " form: " << why << "\n";
      continue;
    }
    test::announce_lane(masked ? "sparse-input masked" : "sparse-input dense",
                        jit::sparse_input_features(probe));
    for (int rows : {64, 128, 256})
      for (const Shape& s : kShapes)
        for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four, WeightKind::rows16,
                                WeightKind::unstructured})
          for (double density : {0.0, 0.5, 1.0}) {
            const uint32_t seed = static_cast<uint32_t>(s.out * 7 + s.in + rows);
            const KernelCase c = make_case(kind, s, masked, rows, density, seed);
            const auto& [w, p, l, count, reach, want] = c;
            // The reference against the plain definition on the unpacked weight.
            for (int64_t r = 0; r < s.out; ++r) {
              int32_t sum = 0;
              for (int64_t i = 0; i < count; ++i) sum += w[r * s.in + l.columns[i]] * l.x[i];
              ASSERT_EQ(want[r], sum) << "row " << r;
            }
            // Every chunk range the layer's threads may take.
            const int32_t sum_x = std::accumulate(l.x.begin(), l.x.end(), 0);
            for (int64_t c0 = 0; c0 < p.chunks(); c0 += std::max<int64_t>(1, p.chunks() / 2)) {
              const int64_t c1 = p.chunks();
              AlignedVector<int32_t> got(static_cast<size_t>((c1 - c0) * rows), -1);
              jit::SparseInputArgs a{};
              a.entries = p.entries.data();
              a.chunk_base = masked ? static_cast<const void*>(p.offsets.data() + c0 * s.in)
                                    : p.entries.data() + c0 * s.in * rows;
              a.chunk_stride = masked ? s.in * 4 : s.in * rows;
              a.columns = reach.data();
              a.x = reinterpret_cast<const int32_t*>(l.x.data());
              a.quads = count / 4;
              a.chunks = c1 - c0;
              a.acc = got.data();
              a.compensation = 128 * sum_x;
              jit::sparse_input_kernel({masked, rows, 3})->run(a);
              for (int64_t r = c0 * rows; r < s.out; ++r)
                ASSERT_EQ(got[static_cast<size_t>(r - c0 * rows)], want[static_cast<size_t>(r)])
                    << s.out << "x" << s.in << " rows=" << rows << " masked=" << masked
                    << " kind=" << static_cast<int>(kind) << " density=" << density
                    << " chunks from " << c0 << ", row " << r;
            }
          }
  }
}

// Long chunks (512..4096 rows, masked form up to 8192): the kernel runs a range of a chunk's rows,
// 64-row slices from any slice of the chunk in the dense form, whole 256-row sub-entries from any
// of them in the masked form, with its sums in memory.
TEST(SparseInputKernel, LongChunksMatchReference) {
  for (bool masked : {false, true}) {
    const jit::SparseInputKernelKey probe{masked, 512};
    if (auto why = test::lane_skip_reason(jit::sparse_input_features(probe)); !why.empty()) {
      std::cout << "[ skip ] " << (masked ? "masked" : "dense") << " form: " << why << "\n";
      continue;
    }
    const int64_t granule = masked ? 256 : 64;
    for (int rows : {512, 4096, 8192}) {
      if (rows >
          (masked ? sparse::kSparseInputMaxMaskedChunkRows : sparse::kSparseInputMaxChunkRows))
        continue;
      // 700 rows: the dense form's last sub-chunk of 3 slices (in one 4096-row chunk, and as
      // the second 512-row chunk); 8400 rows: a second 8192-row chunk of one sub-entry.
      for (const Shape& s :
           {Shape{600, 70}, Shape{4100, 33}, Shape{64, 9}, Shape{700, 20}, Shape{8400, 12}})
        for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four, WeightKind::rows16,
                                WeightKind::unstructured})
          for (double density : {0.0, 0.5, 1.0}) {
            if (s.out > 8192 && rows != 8192) continue;  // the tall shape is for 8192-row chunks
            const uint32_t seed = static_cast<uint32_t>(s.out + s.in + rows);
            const KernelCase c = make_case(kind, s, masked, rows, density, seed);
            const auto& [w, p, l, count, reach, want] = c;
            const int32_t sum_x = std::accumulate(l.x.begin(), l.x.end(), 0);
            const int64_t used = (s.out + granule - 1) / granule * granule;
            for (int64_t unit : {int64_t{rows}, int64_t{256}, int64_t{64}})
              for (int64_t r0 = 0; r0 < used; r0 += unit) {
                const int64_t n = std::min(r0 + unit, used) - r0;
                if (r0 / rows != (r0 + n - 1) / rows) continue;  // units stay within a chunk
                if (n % granule != 0) continue;
                AlignedVector<int32_t> got(static_cast<size_t>(n), -1);
                jit::SparseInputArgs a{};
                a.entries = p.entries.data();
                if (masked) {
                  a.chunk_base = p.offsets.data() + r0 / 256 * s.in;
                  a.chunk_stride = s.in * 4;
                } else {
                  a.chunk_base = p.entries.data() + p.entry_offset(r0 / rows, 0) + r0 % rows;
                  a.column_stride = p.stored_rows(r0 / rows);
                }
                a.columns = reach.data();
                a.x = reinterpret_cast<const int32_t*>(l.x.data());
                a.quads = count / 4;
                a.chunks = 1;
                a.slices = n / 64;
                a.acc = got.data();
                a.compensation = 128 * sum_x;
                jit::sparse_input_kernel({masked, rows, 3})->run(a);
                for (int64_t r = r0; r < std::min(r0 + n, s.out); ++r)
                  ASSERT_EQ(got[static_cast<size_t>(r - r0)], want[static_cast<size_t>(r)])
                      << s.out << "x" << s.in << " rows=" << rows << " masked=" << masked
                      << " unit " << unit << " from " << r0 << " kind=" << static_cast<int>(kind)
                      << " density=" << density << ", row " << r;
              }
          }
    }
  }
}

// The layer (every epilogue, 1..4 tokens, fp32 / int8 / bf16 outputs) against the int8 reference
// on the thresholded input; the public API picks the kernel where it runs and zeroes the inputs
// itself elsewhere.
TEST(SparseInputLayer, MatchesReferenceOnThresholdedInput) {
  int case_index = 0;
  const bool kernel_here = jit::best_int8_isa() == jit::Isa::avx512_vnni;
  // 4160 x 40: 4096-row chunks, the input list split over the threads.
  for (auto [out, in] : {std::pair<int64_t, int64_t>{70, 130}, {300, 64}, {1030, 257}, {4160, 40}})
    for (WeightKind kind : {WeightKind::dense, WeightKind::two_of_four})
      for (Activation act : {Activation::none, Activation::gelu_tanh, Activation::silu})
        for (OperandOp op : {OperandOp::add, OperandOp::multiply}) {
          const uint32_t seed = static_cast<uint32_t>(out + in);
          auto wf = test::random_floats(static_cast<size_t>(out * in), seed);
          if (kind == WeightKind::two_of_four) wf = sparse::prune_n_m(wf, out, in, 2, 4);
          const auto bias = test::random_floats(static_cast<size_t>(out), seed + 1);
          LinearOptions o;
          o.activation = act;
          o.operand = op;
          o.threads = 2;
          o.pattern = kind == WeightKind::two_of_four ? Pattern::n_of_m(2, 4) : Pattern::dense();
          const auto x = test::random_floats(static_cast<size_t>(5 * in), seed + 2);
          o.input_threshold = test::threshold_for(x, 0.5);
          // Every other case: the kernel that skips, and the usual decode kernel on zeroed inputs.
          // Expected sparsity 0.9, 0.6, 0.4, 0.2 in turn: the kernel runs from 0.3 on dense
          // weights of 2048 rows or more, from 0.5 on 2:4 ones in the masked form (VBMI2; 0.4
          // where the CPU tuning says so: Intel), from 0.7 on the others.
          const float expected[4] = {0.9f, 0.6f, 0.4f, 0.2f};
          o.expected_input_sparsity = expected[case_index++ % 4];
          const bool long_dense = out >= 2048 && kind == WeightKind::dense;
          const bool long_masked_2of4 =
              out >= 2048 && kind == WeightKind::two_of_four && jit::can_run(jit::vbmi2_features());
          const float masked_2of4_needed =
              jit::cpu_tuning().sparse_input_2of4_from_40_percent ? 0.4f : 0.5f;
          const float needed = long_dense ? 0.3f : long_masked_2of4 ? masked_2of4_needed : 0.7f;
          const bool skipping = o.expected_input_sparsity >= needed;
          auto lin = SparseLinear::pack(wf.data(), out, in, bias.data(), o);
          if (kernel_here) {
            EXPECT_EQ(lin.info().decode_kernel == "jit:int8-sparse-input-decode:avx512_vnni",
                      skipping)
                << lin.info().decode_kernel;
          }
          std::vector<int8_t> wq(wf.size());
          std::vector<float> ws(static_cast<size_t>(out));
          sparse::quantize_rows(wf.data(), out, in, wq.data(), ws.data());
          const auto residual = test::random_floats(static_cast<size_t>(5 * out), seed + 3);
          for (int64_t tokens = 1; tokens <= 5; ++tokens) {
            const std::vector<float> xt(x.begin(), x.begin() + tokens * in);
            // Calls of more than 4 tokens keep every input.
            const auto used = tokens <= 4 ? test::thresholded(xt, o.input_threshold) : xt;
            sparse::Epilogue e{bias.data(), act, residual.data(), op};
            const auto want =
                test::reference_int8_on(used, tokens, in, wq.data(), ws.data(), out, e);
            std::vector<float> y(static_cast<size_t>(tokens * out));
            lin.forward(xt.data(), tokens, y.data(), residual.data());
            test::expect_close(y, want, 1e-4, "fp32 output");
            std::vector<uint16_t> yb(y.size());
            lin.forward_bf16(xt.data(), tokens, yb.data(), residual.data());
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_NEAR(sparse::from_bf16(yb[i]), want[i], 1e-2 * (1 + std::fabs(want[i])));
            QuantizedInput q;
            lin.quantize_input(xt.data(), tokens, q);
            std::vector<int8_t> y8(y.size());
            const float y_scale = 0.05f;
            lin.forward(q, y8.data(), y_scale, residual.data());
            test::expect_requantized(y8, want, y_scale);
          }
        }
}

// Long chunks in the dense form split the list of non-zero inputs over the threads (each part over
// whole chunks, the parts' sums added): 1 to 5 threads, lists shorter than the thread count
// (fewer parts than threads), a last chunk of 64 rows, one chunk holding fewer rows than its
// height (2600 rows: a 4096-row chunk, the last 64-row slice partly past the weight).
TEST(SparseInputLayer, LongChunksSplitTheInputListOverTheThreads) {
  if (jit::best_int8_isa() != jit::Isa::avx512_vnni) GTEST_SKIP() << "needs AVX-512 VNNI";
  for (const int64_t out : {4160, 2600}) {
    const int64_t in = 40;
    const auto wf = test::random_floats(static_cast<size_t>(out * in), 51);
    const auto bias = test::random_floats(static_cast<size_t>(out), 52);
    const auto x = test::random_floats(static_cast<size_t>(in), 53);
    std::vector<int8_t> wq(wf.size());
    std::vector<float> ws(static_cast<size_t>(out));
    sparse::quantize_rows(wf.data(), out, in, wq.data(), ws.data());
    for (double zero : {0.5, 0.9, 0.97})
      for (int threads = 1; threads <= 5; ++threads) {
        LinearOptions o;
        o.threads = threads;
        o.pattern = Pattern::dense();
        o.input_threshold = test::threshold_for(x, zero);
        o.expected_input_sparsity = 0.9f;
        auto lin = SparseLinear::pack(wf.data(), out, in, bias.data(), o);
        ASSERT_EQ(lin.info().decode_kernel, "jit:int8-sparse-input-decode:avx512_vnni");
        // The dense form in long chunks (both forms have the same kernel name: the packed size
        // tells them apart).
        bool dense_size = false, masked_size = false;
        for (int rows : {512, 1024, 2048, 4096}) {
          const int64_t bytes = lin.info().decode_packed_bytes;
          dense_size |= sparse::pack_int8_sparse_input(wq.data(), ws.data(), bias.data(), out, in,
                                                       false, rows)
                            .bytes() == bytes;
          masked_size |=
              sparse::pack_int8_sparse_input(wq.data(), ws.data(), bias.data(), out, in, true, rows)
                  .bytes() == bytes;
        }
        EXPECT_TRUE(dense_size && !masked_size) << lin.info().decode_packed_bytes << " bytes";
        const auto want =
            test::reference_int8_on(test::thresholded(x, o.input_threshold), 1, in, wq.data(),
                                    ws.data(), out, sparse::Epilogue{bias.data()});
        std::vector<float> y(static_cast<size_t>(out));
        lin.forward(x.data(), 1, y.data());
        test::expect_close(y, want, 1e-4,
                           std::to_string(out) + " rows, " + std::to_string(threads) +
                               " threads, " + std::to_string(zero) + " zero");
      }
  }
}

void masked_long_chunks_case(int64_t out, int64_t in) {
  auto wf =
      sparse::prune_n_m(test::random_floats(static_cast<size_t>(out * in), 41), out, in, 2, 4);
  const auto bias = test::random_floats(static_cast<size_t>(out), 42);
  const auto x = test::random_floats(static_cast<size_t>(2 * in), 43);
  std::vector<int8_t> wq(wf.size());
  std::vector<float> ws(static_cast<size_t>(out));
  sparse::quantize_rows(wf.data(), out, in, wq.data(), ws.data());
  // The layer holds the masked layout in 8192-row chunks (2:4: 64 % of the dense form's values).
  const auto masked =
      sparse::pack_int8_sparse_input(wq.data(), ws.data(), bias.data(), out, in, true, 8192);
  EXPECT_LT(masked.entries.size(), static_cast<size_t>(out * in) * 2 / 3);
  // 72 inputs: 3 to 13 quads of non-zero ones, split over 1-3 threads.
  for (double zero : {0.3, 0.5, 0.9})
    for (int threads = 1; threads <= 3; ++threads) {
      LinearOptions o;
      o.threads = threads;
      o.pattern = Pattern::n_of_m(2, 4);
      o.activation = Activation::silu;
      o.input_threshold = test::threshold_for(x, zero);
      o.expected_input_sparsity = 0.9f;
      auto lin = SparseLinear::pack(wf.data(), out, in, bias.data(), o);
      ASSERT_EQ(lin.info().decode_kernel, "jit:int8-sparse-input-decode:avx512_vnni");
      EXPECT_EQ(lin.info().decode_packed_bytes, masked.bytes());
      for (int64_t tokens = 1; tokens <= 2; ++tokens) {
        const std::vector<float> xt(x.begin(), x.begin() + tokens * in);
        const auto want = test::reference_int8_on(test::thresholded(xt, o.input_threshold), tokens,
                                                  in, wq.data(), ws.data(), out,
                                                  sparse::Epilogue{bias.data(), Activation::silu});
        std::vector<float> y(static_cast<size_t>(tokens * out));
        lin.forward(xt.data(), tokens, y.data());
        test::expect_close(y, want, 1e-4,
                           "masked long chunks, " + std::to_string(out) + " rows, " +
                               std::to_string(threads) + " threads, " + std::to_string(zero) +
                               " zero");
      }
    }
}

// The masked form in long chunks, which the layer picks for a 2:4 weight of 2048 rows or more:
// 256-row sub-entries, the input list split over two threads, the last chunk short, every group
// of quads (kSparseInputGroupQuads) full or partial as the list length makes it. 4160 rows: one
// 8192-row chunk; 8512 rows: a whole 8192-row chunk, then 320 rows (two sub-entries).
TEST(SparseInputLayer, LongChunksInTheMaskedForm) {
  // The layer takes the kernel only where the ISA cap (SPARQ_MAX_ISA) allows AVX-512 VNNI.
  if (jit::best_int8_isa() != jit::Isa::avx512_vnni ||
      !jit::can_run(jit::sparse_input_features({true, 512})))
    GTEST_SKIP() << "needs AVX-512 VNNI and VBMI2";
  for (const int64_t out : {4160, 8512}) masked_long_chunks_case(out, 72);
}

// The list of a token's non-zero inputs: the portable twin against its definition, the AVX-512
// one against the portable (sums over the whole byte range, columns in every position of a
// 16-input group and of a tail, nothing written past the count).
TEST(InputList, VectorListMatchesPortable) {
  const bool vector = jit::isa_available(jit::Isa::avx512);
  if (!vector) std::cout << "[ skip ] AVX-512 input list: this CPU lacks AVX-512\n";
  for (int64_t in : {1, 5, 15, 16, 17, 31, 64, 100, 2048, 5633})
    for (double density : {0.0, 0.1, 0.5, 0.9, 1.0}) {
      const auto seed = static_cast<uint32_t>(in * 10 + static_cast<int64_t>(density * 10));
      auto s8 = test::random_int8(static_cast<size_t>(in), seed, -128, 127);
      std::mt19937 rng(seed);
      std::bernoulli_distribution keep(density);
      for (int8_t& v : s8)
        if (!keep(rng)) v = 0;
      if (in > 2) s8[1] = -128, s8[2] = 127;  // the byte range's ends, in every density
      std::vector<int32_t> want_columns;
      std::vector<int8_t> want_values;
      int32_t want_sum = 0;
      for (int64_t c = 0; c < in; ++c) {
        want_sum += s8[c];
        if (s8[c] == 0) continue;
        want_columns.push_back(static_cast<int32_t>(c));
        want_values.push_back(s8[c]);
      }
      const auto check = [&](auto list_fn, const char* what) {
        // Sentinels past `in` catch a store beyond the count.
        std::vector<int32_t> columns(static_cast<size_t>(in + 16), -7);
        std::vector<int8_t> values(static_cast<size_t>(in + 16), 99);
        const NonzeroList got = list_fn(s8.data(), in, columns.data(), values.data());
        const std::string label =
            std::string(what) + " in=" + std::to_string(in) + " density=" + std::to_string(density);
        EXPECT_EQ(got.sum, want_sum) << label;
        test::expect_input_list(got.count, want_columns, want_values, columns, values, -7,
                                int8_t{99}, label);
      };
      check(detail::list_nonzero_s8_portable, "portable");
      if (vector) check(detail::list_nonzero_s8_avx512, "avx512");
    }
}

TEST(SparseInputLayer, AllInputsBelowThreshold) {
  const int64_t out = 40, in = 24;
  const auto wf = test::random_floats(static_cast<size_t>(out * in), 3);
  const auto bias = test::random_floats(static_cast<size_t>(out), 4);
  LinearOptions o;
  o.input_threshold = 10.0f;  // above every |x|
  o.expected_input_sparsity = 1.0f;
  o.activation = Activation::relu;
  auto lin = SparseLinear::pack(wf.data(), out, in, bias.data(), o);
  const auto x = test::random_floats(static_cast<size_t>(in), 5);
  std::vector<float> y(static_cast<size_t>(out));
  lin.forward(x.data(), 1, y.data());
  for (int64_t r = 0; r < out; ++r) EXPECT_EQ(y[r], std::max(0.0f, bias[r])) << r;
}

TEST(SparseInputLayer, RejectsBadThresholds) {
  const std::vector<float> w(16, 1.0f);
  for (float bad : {-1.0f, std::nanf(""), INFINITY}) {
    LinearOptions o;
    o.input_threshold = bad;
    EXPECT_NE(test::message_of<InvalidArgument>([&] {
                SparseLinear::pack(w.data(), 4, 4, nullptr, o);
              }).find("input_threshold must be a finite number >= 0"),
              std::string::npos)
        << bad;
    o.input_threshold = 0.5f;
    o.expected_input_sparsity = bad;
    EXPECT_NE(test::message_of<InvalidArgument>([&] {
                SparseLinear::pack(w.data(), 4, 4, nullptr, o);
              }).find("expected_input_sparsity must be in [0, 1]"),
              std::string::npos)
        << bad;
  }
  LinearOptions o;
  o.input_threshold = 0.5f;
  o.device = Device::cuda(0);
  o.dtype = DType::f16;
  EXPECT_NE(test::message_of<NotSupported>([&] {
              SparseLinear::pack(w.data(), 4, 4, nullptr, o);
            }).find("input_threshold (activation sparsity) is not supported on CUDA"),
            std::string::npos);
}

// fp32 layers threshold too (they have no skipping kernel; bf16 layers: test_bf16_sparse_input).
TEST(SparseInputLayer, FloatLayersThreshold) {
  const int64_t out = 33, in = 50;
  const auto wf = test::random_floats(static_cast<size_t>(out * in), 8);
  const auto x = test::random_floats(static_cast<size_t>(2 * in), 9);
  LinearOptions o;
  o.dtype = DType::f32;
  o.input_threshold = test::threshold_for(x, 0.4);
  auto lin = SparseLinear::pack(wf.data(), out, in, nullptr, o);
  const auto used = test::thresholded(x, o.input_threshold);
  std::vector<float> want(static_cast<size_t>(2 * out)), y(want.size());
  sparse::linear_f32(used.data(), 2, wf.data(), out, in, {}, want.data());
  lin.forward(x.data(), 2, y.data());
  test::expect_close(y, want, 1e-4, "f32 thresholded");
}

}  // namespace
}  // namespace sparq
