// Sparsity statistics and the storage formats: BSR, N:M, the int8 4x1 packed weights and
// activation layout, and bf16 conversion. Round trips must be exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparq/types.hpp"
#include "sparse/bf16.hpp"
#include "sparse/blocked_ell.hpp"
#include "sparse/bsr.hpp"
#include "sparse/int8_block_pack.hpp"
#include "sparse/nm.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
#include "test_util.hpp"

namespace sparq {
namespace {

using sparse::Int8Layout;

// Random values where each entry is zero with probability `zero_p` (not block aligned).
std::vector<float> speckled(int64_t rows, int64_t cols, double zero_p, uint32_t seed) {
  auto w = test::random_floats(static_cast<size_t>(rows * cols), seed);
  std::mt19937 rng(seed + 1000);
  std::bernoulli_distribution zero(zero_p);
  for (float& v : w)
    if (zero(rng)) v = 0.0f;
  return w;
}

// ---------------------------------------------------------------------------------------------
// Statistics

TEST(Stats, SparsityCountsZerosIncludingNegativeZero) {
  const std::vector<float> w = {0.0f, 1.0f, -0.0f, 2.0f, 0.0f, -3.0f, 4.0f, 1e-30f};
  EXPECT_DOUBLE_EQ(sparse::sparsity(w), 3.0 / 8.0);
  EXPECT_EQ(sparse::sparsity(std::vector<float>(10, 0.5f)), 0.0);
  EXPECT_EQ(sparse::sparsity(std::vector<float>(10, 0.0f)), 1.0);
}

TEST(Stats, BlockSparsityAndFitWithEdgeBlocks) {
  // 6x5 with 4x1 blocks: block rows {0..3, 4..5} x 5 block columns = 10 blocks.
  const int64_t rows = 6, cols = 5;
  std::vector<float> w(rows * cols, 1.0f);
  auto at = [&](int64_t r, int64_t c) -> float& { return w[r * cols + c]; };
  for (int64_t r = 0; r < 4; ++r) at(r, 1) = 0.0f;  // full block (0, 1)
  for (int64_t r = 4; r < 6; ++r) at(r, 3) = 0.0f;  // partial edge block (1, 3), all of it
  for (int64_t r = 0; r < 3; ++r) at(r, 4) = 0.0f;  // 3 of the 4 entries of block (0, 4)
  EXPECT_DOUBLE_EQ(sparse::block_sparsity(w, rows, cols, {4, 1}), 2.0 / 10.0);
  EXPECT_FALSE(sparse::fits_blocks(w, rows, cols, {4, 1}));
  at(3, 4) = 0.0f;
  EXPECT_DOUBLE_EQ(sparse::block_sparsity(w, rows, cols, {4, 1}), 3.0 / 10.0);
  EXPECT_TRUE(sparse::fits_blocks(w, rows, cols, {4, 1}));
  EXPECT_DOUBLE_EQ(sparse::sparsity(w), 10.0 / 30.0);
  // 1x1 blocks: every zero is its own block.
  EXPECT_DOUBLE_EQ(sparse::block_sparsity(w, rows, cols, {1, 1}), 10.0 / 30.0);
  EXPECT_TRUE(sparse::fits_blocks(w, rows, cols, {1, 1}));
  // 1x5 blocks (whole rows): none empty, and the zeros are not whole rows.
  EXPECT_EQ(sparse::block_sparsity(w, rows, cols, {1, 5}), 0.0);
  EXPECT_FALSE(sparse::fits_blocks(w, rows, cols, {1, 5}));
}

TEST(Stats, StrayNonZeroInAnEmptyBlockBreaksTheFit) {
  const int64_t rows = 8, cols = 8;
  std::vector<float> w(rows * cols, 1.0f);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 4; c < 8; ++c) w[r * cols + c] = 0.0f;
  EXPECT_TRUE(sparse::fits_blocks(w, rows, cols, {4, 4}));
  EXPECT_DOUBLE_EQ(sparse::block_sparsity(w, rows, cols, {4, 4}), 0.25);
  w[2 * cols + 5] = -0.5f;  // the stray
  EXPECT_FALSE(sparse::fits_blocks(w, rows, cols, {4, 4}));
  EXPECT_EQ(sparse::block_sparsity(w, rows, cols, {4, 4}), 0.0);
  EXPECT_FALSE(sparse::fits_blocks(w, rows, cols, {4, 1}));
  EXPECT_FALSE(sparse::fits_blocks(w, rows, cols, {1, 4}));
  EXPECT_TRUE(sparse::fits_blocks(w, rows, cols, {1, 1}));
}

TEST(Stats, FitsOnlyTheShapeItWasPrunedFor) {
  const int64_t rows = 16, cols = 16;
  const auto w = test::random_floats(static_cast<size_t>(rows * cols), 21);
  const auto p = sparse::prune_blocks(w, rows, cols, {4, 1}, 0.5);
  EXPECT_TRUE(sparse::fits_blocks(p, rows, cols, {4, 1}));
  EXPECT_FALSE(sparse::fits_blocks(p, rows, cols, {1, 4}));
  EXPECT_FALSE(sparse::fits_blocks(p, rows, cols, {8, 1}));
  EXPECT_DOUBLE_EQ(sparse::block_sparsity(p, rows, cols, {4, 1}), 0.5);
}

TEST(Stats, FirstNmViolation) {
  const int64_t rows = 3, cols = 8;
  std::vector<float> w = {
      1, 0, 2, 0, 0, 0, 3, 4,  // fine for 2:4
      0, 5, 6, 0, 7, 0, 8, 9,  // columns 4..7 hold 3
      1, 2, 3, 4, 0, 0, 0, 0,  // columns 0..3 hold 4
  };
  const auto v = sparse::first_n_m_violation(w, rows, cols, 2, 4);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->row, 1);
  EXPECT_EQ(v->first_col, 4);
  EXPECT_EQ(v->nonzeros, 3);
  const std::string text = v->describe(2, 4);
  EXPECT_NE(text.find("row 1"), std::string::npos) << text;
  EXPECT_NE(text.find("columns 4..7"), std::string::npos) << text;
  EXPECT_NE(text.find("3 non-zeros"), std::string::npos) << text;
  EXPECT_NE(text.find("2:4"), std::string::npos) << text;
  EXPECT_FALSE(sparse::fits_n_m(w, rows, cols, 2, 4));

  const auto v3 = sparse::first_n_m_violation(w, rows, cols, 3, 4);
  ASSERT_TRUE(v3.has_value());
  EXPECT_EQ(v3->row, 2);
  EXPECT_EQ(v3->first_col, 0);
  EXPECT_EQ(v3->nonzeros, 4);
  EXPECT_TRUE(sparse::fits_n_m(w, rows, cols, 4, 4));

  // A violation inside a partial last group: 1x6 with 1:4, columns 4..5 both non-zero.
  const std::vector<float> tail = {1, 0, 0, 0, 2, 3};
  const auto vt = sparse::first_n_m_violation(tail, 1, 6, 1, 4);
  ASSERT_TRUE(vt.has_value());
  EXPECT_EQ(vt->row, 0);
  EXPECT_EQ(vt->first_col, 4);
  EXPECT_EQ(vt->nonzeros, 2);
  EXPECT_EQ(vt->last_col, 5);
  EXPECT_NE(vt->describe(1, 4).find("columns 4..5"), std::string::npos) << vt->describe(1, 4);
  EXPECT_TRUE(sparse::fits_n_m(tail, 1, 6, 2, 4));

  EXPECT_THROW(sparse::first_n_m_violation(w, rows, cols, 5, 4), InvalidArgument);
  EXPECT_THROW(sparse::first_n_m_violation(w, rows, cols + 1, 2, 4), InvalidArgument);
}

TEST(Stats, AnalyzeReportsEveryShape) {
  // 16x8 of ones with two aligned 4x4 blocks zeroed.
  const int64_t rows = 16, cols = 8;
  std::vector<float> w(rows * cols, 1.0f);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 4; ++c) w[r * cols + c] = 0.0f;
  for (int64_t r = 8; r < 12; ++r)
    for (int64_t c = 4; c < 8; ++c) w[r * cols + c] = 0.0f;
  const auto report = sparse::analyze(w, rows, cols);
  EXPECT_DOUBLE_EQ(report.sparsity, 0.25);
  ASSERT_EQ(report.blocks.size(), 4u);
  const BlockShape shapes[] = {{4, 1}, {1, 4}, {16, 1}, {4, 4}};
  const double block_sparsity[] = {8.0 / 32, 8.0 / 32, 0.0, 2.0 / 8};
  const bool fits[] = {true, true, false, true};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(report.blocks[i].block, shapes[i]);
    EXPECT_DOUBLE_EQ(report.blocks[i].block_sparsity, block_sparsity[i]);
    EXPECT_EQ(report.blocks[i].fits, fits[i]);
  }
  EXPECT_FALSE(report.fits_2_4);

  const auto p = sparse::prune_n_m(test::random_floats(16 * 8, 4), rows, cols, 2, 4);
  const auto r24 = sparse::analyze(p, rows, cols);
  EXPECT_TRUE(r24.fits_2_4);
  EXPECT_DOUBLE_EQ(r24.sparsity, 0.5);
}

// ---------------------------------------------------------------------------------------------
// BSR

void check_bsr_round_trip(const std::vector<float>& w, int64_t rows, int64_t cols,
                          BlockShape block) {
  SCOPED_TRACE(testing::Message() << rows << "x" << cols << " block " << block.rows << "x"
                                  << block.cols);
  const auto m = sparse::to_bsr(w, rows, cols, block);
  EXPECT_EQ(sparse::to_dense(m), w);
  const int64_t R = block.rows, C = block.cols;
  const int64_t block_rows = (rows + R - 1) / R, block_cols = (cols + C - 1) / C;
  EXPECT_EQ(m.rows, rows);
  EXPECT_EQ(m.cols, cols);
  EXPECT_EQ(m.block, block);
  ASSERT_EQ(m.block_rows(), block_rows);
  ASSERT_EQ(m.row_ptr.front(), 0);
  ASSERT_EQ(m.row_ptr.back(), m.stored_blocks());
  ASSERT_EQ(static_cast<int64_t>(m.values.size()), m.stored_blocks() * R * C);
  int64_t nonempty = 0;
  for (int64_t br = 0; br < block_rows; ++br) {
    ASSERT_LE(m.row_ptr[br], m.row_ptr[br + 1]);
    for (int64_t bc = 0; bc < block_cols; ++bc) {
      bool any = false;
      for (int64_t r = br * R; r < std::min(rows, br * R + R); ++r)
        for (int64_t c = bc * C; c < std::min(cols, bc * C + C); ++c) any |= w[r * cols + c] != 0;
      nonempty += any;
    }
    for (int64_t b = m.row_ptr[br]; b < m.row_ptr[br + 1]; ++b) {
      ASSERT_GE(m.col_idx[b], 0);
      ASSERT_LT(m.col_idx[b], block_cols);
      if (b > m.row_ptr[br]) {
        EXPECT_LT(m.col_idx[b - 1], m.col_idx[b]) << "unsorted block row";
      }
      // Every stored block holds a non-zero; padding outside the matrix is zero.
      bool any = false;
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < C; ++j) {
          const float v = m.values[(b * R + i) * C + j];
          const int64_t r = br * R + i, c = m.col_idx[b] * C + j;
          if (r >= rows || c >= cols) {
            EXPECT_EQ(v, 0.0f) << "padding at block " << b;
          } else {
            any |= v != 0.0f;
          }
        }
      EXPECT_TRUE(any) << "stored an empty block " << b;
    }
  }
  EXPECT_EQ(m.stored_blocks(), nonempty);
}

TEST(Bsr, RoundTripManyShapes) {
  const BlockShape shapes[] = {{4, 1}, {1, 4}, {16, 1}, {4, 4}, {3, 5}, {1, 1}, {2, 8}, {64, 1}};
  const std::pair<int64_t, int64_t> sizes[] = {{37, 53}, {5, 3}, {1, 1}, {16, 16}, {3, 5}, {2, 70}};
  uint32_t seed = 200;
  for (BlockShape block : shapes)
    for (auto [rows, cols] : sizes) {
      const auto dense = test::random_floats(static_cast<size_t>(rows * cols), seed++);
      check_bsr_round_trip(dense, rows, cols, block);
      check_bsr_round_trip(sparse::prune_blocks(dense, rows, cols, block, 0.6), rows, cols, block);
      check_bsr_round_trip(speckled(rows, cols, 0.8, seed++), rows, cols, block);
      check_bsr_round_trip(std::vector<float>(rows * cols, 0.0f), rows, cols, block);
    }
}

TEST(Bsr, HandExample3x5With2x2Blocks) {
  const std::vector<float> w = {
      1, 0, 0, 0, 2,  //
      0, 0, 0, 0, 0,  //
      0, 0, 3, 0, 0,  //
  };
  const auto m = sparse::to_bsr(w, 3, 5, {2, 2});
  EXPECT_EQ(m.row_ptr, (std::vector<int64_t>{0, 2, 3}));
  EXPECT_EQ(m.col_idx, (std::vector<int32_t>{0, 2, 1}));
  EXPECT_EQ(m.values, (std::vector<float>{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}));
  EXPECT_EQ(m.bytes(), static_cast<int64_t>(3 * 8 + 3 * 4 + 12 * 4));
  EXPECT_EQ(sparse::to_dense(m), w);
}

// Blocked-ELL (cuSPARSE's block format, built on the CPU for the CUDA backend).
TEST(BlockedEll, RoundTripWithRaggedRowsAndEdges) {
  uint32_t seed = 300;
  for (int b : {2, 16, 32})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 53}, {64, 64}, {5, 3}, {96, 40}})
      for (double sparsity : {0.0, 0.6, 1.0}) {
        const auto w =
            sparse::prune_blocks(test::random_floats(static_cast<size_t>(rows * cols), seed++),
                                 rows, cols, {b, b}, sparsity);
        const auto e = sparse::to_blocked_ell(sparse::to_bsr(w, rows, cols, {b, b}));
        EXPECT_EQ(sparse::to_dense(e), w) << b << " " << rows << "x" << cols;
        EXPECT_EQ(e.rows % b, 0);
        EXPECT_EQ(e.cols % b, 0);
        EXPECT_GE(e.slots, 1);
        EXPECT_EQ(e.col_idx.size(), static_cast<size_t>(e.rows / b * e.slots));
        EXPECT_EQ(e.values.size(), static_cast<size_t>(e.rows * e.ell_cols()));
        for (int32_t c : e.col_idx) EXPECT_TRUE(c >= -1 && c < e.cols / b);
      }
}

TEST(BlockedEll, HandExampleLayout) {
  // Block row 0 holds blocks at block columns 0 and 2, block row 1 one block at column 1: two
  // slots, the second of row 1 padded with -1. Values: rows x (slots * block), row-major.
  const std::vector<float> w = {
      1, 0, 0, 0, 2, 0,  //
      0, 0, 0, 0, 0, 3,  //
      0, 0, 4, 0, 0, 0,  //
      0, 0, 0, 5, 0, 0,  //
  };
  const auto e = sparse::to_blocked_ell(sparse::to_bsr(w, 4, 6, {2, 2}));
  EXPECT_EQ(e.slots, 2);
  EXPECT_EQ(e.ell_cols(), 4);
  EXPECT_EQ(e.col_idx, (std::vector<int32_t>{0, 2, 1, -1}));
  EXPECT_EQ(e.values, (std::vector<float>{1, 0, 2, 0,  //
                                          0, 0, 0, 3,  //
                                          4, 0, 0, 0,  //
                                          0, 5, 0, 0}));
  EXPECT_DOUBLE_EQ(e.padding(), 0.25);
  EXPECT_THROW(sparse::to_blocked_ell(sparse::to_bsr(w, 4, 6, {2, 1})), InvalidArgument);
}

TEST(Bsr, InvalidArguments) {
  const std::vector<float> w(12, 1.0f);
  EXPECT_THROW(sparse::to_bsr(w, 3, 5, {4, 1}), InvalidArgument);
  EXPECT_THROW(sparse::to_bsr(w, 0, 12, {4, 1}), InvalidArgument);
  EXPECT_THROW(sparse::to_bsr(w, 3, 4, {0, 1}), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// N:M

void check_nm_round_trip(const std::vector<float>& w, int64_t rows, int64_t cols, int n, int m,
                         int bits) {
  SCOPED_TRACE(testing::Message() << n << ":" << m << " " << rows << "x" << cols);
  const auto nm = sparse::to_n_m(w, rows, cols, n, m);
  EXPECT_EQ(sparse::to_dense(nm), w);
  EXPECT_EQ(nm.rows, rows);
  EXPECT_EQ(nm.cols, cols);
  EXPECT_EQ(nm.n, n);
  EXPECT_EQ(nm.m, m);
  EXPECT_EQ(nm.index_bits, bits);
  const int64_t groups = (cols + m - 1) / m;
  ASSERT_EQ(nm.groups_per_row(), groups);
  ASSERT_EQ(static_cast<int64_t>(nm.values.size()), rows * groups * n);
  EXPECT_EQ(nm.indices.size(), (nm.values.size() * static_cast<size_t>(bits) + 7) / 8);
  EXPECT_EQ(nm.bytes(), static_cast<int64_t>(nm.values.size() * 4 + nm.indices.size()));
  // Every slot points at its value; every non-zero is in some slot.
  int64_t slot = 0, stored_nonzeros = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g)
      for (int k = 0; k < n; ++k, ++slot) {
        const int idx = nm.index_of(slot);
        ASSERT_GE(idx, 0);
        ASSERT_LT(idx, m);
        const int64_t c = g * m + idx;
        const float want = c < cols ? w[r * cols + c] : 0.0f;
        if (nm.values[slot] != 0.0f) {
          EXPECT_EQ(nm.values[slot], want) << "slot " << slot;
          ++stored_nonzeros;
        }
      }
  EXPECT_EQ(stored_nonzeros, std::count_if(w.begin(), w.end(), [](float v) { return v != 0; }));
}

TEST(NM, RoundTrip2of4And4of8) {
  struct Nm {
    int n, m, bits;
  };
  uint32_t seed = 300;
  for (Nm nm : {Nm{2, 4, 2}, Nm{4, 8, 3}, Nm{1, 4, 2}, Nm{1, 2, 1}})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{7, 30}, {5, 13}, {1, 1}, {37, 53}}) {
      auto w = sparse::prune_n_m(test::random_floats(static_cast<size_t>(rows * cols), seed++),
                                 rows, cols, nm.n, nm.m);
      check_nm_round_trip(w, rows, cols, nm.n, nm.m, nm.bits);
      // Sparser than n:m: some groups hold fewer than n non-zeros, some none.
      const auto mask = speckled(rows, cols, 0.5, seed++);
      for (size_t i = 0; i < w.size(); ++i)
        if (mask[i] == 0.0f) w[i] = 0.0f;
      check_nm_round_trip(w, rows, cols, nm.n, nm.m, nm.bits);
      check_nm_round_trip(std::vector<float>(rows * cols, 0.0f), rows, cols, nm.n, nm.m, nm.bits);
    }
}

TEST(NM, HandExampleBitPacking) {
  // 2:4 slots: (5 @1), (6 @3), (7 @0), (8 @3) -> bits 01 11 00 11, little-endian -> 0b11001101.
  const std::vector<float> w = {0, 5, 0, 6, 7, 0, 0, 8};
  const auto nm = sparse::to_n_m(w, 1, 8, 2, 4);
  EXPECT_EQ(nm.values, (std::vector<float>{5, 6, 7, 8}));
  EXPECT_EQ(nm.indices, (std::vector<uint8_t>{0xCD}));
  EXPECT_EQ(sparse::to_dense(nm), w);
}

TEST(NM, NotNmThrowsNamingTheRow) {
  const int64_t rows = 4, cols = 8;
  auto w = sparse::prune_n_m(test::random_floats(rows * cols, 9), rows, cols, 2, 4);
  // Row 2, group at column 4 gets a third non-zero.
  for (int64_t c = 4; c < 8; ++c)
    if (w[2 * cols + c] == 0.0f) {
      w[2 * cols + c] = 0.25f;
      break;
    }
  try {
    sparse::to_n_m(w, rows, cols, 2, 4);
    ADD_FAILURE() << "to_n_m accepted a weight that is not 2:4";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("row 2"), std::string::npos) << what;
    EXPECT_NE(what.find("columns 4..7"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(sparse::to_n_m(w, rows, cols, 3, 4));
  EXPECT_THROW(sparse::to_n_m(w, rows, cols, 5, 4), InvalidArgument);
  EXPECT_THROW(sparse::to_n_m(w, rows, cols, 0, 4), InvalidArgument);
  EXPECT_THROW(sparse::to_n_m(w, rows, cols, 2, 0), InvalidArgument);
  EXPECT_THROW(sparse::to_n_m(w, rows, cols + 1, 2, 4), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// int8 4x1 packing

TEST(Int8Pack, LayoutConstants) {
  EXPECT_EQ(sparse::cols_per_entry(Int8Layout::pairs_i16), 2);
  EXPECT_EQ(sparse::cols_per_entry(Int8Layout::quads_u8), 4);
  EXPECT_EQ(sparse::entry_bytes(Int8Layout::pairs_i16), 24);
  EXPECT_EQ(sparse::entry_bytes(Int8Layout::quads_u8), 32);
  EXPECT_EQ(sparse::slice_tokens(Int8Layout::pairs_i16), 16);
  EXPECT_EQ(sparse::slice_tokens(Int8Layout::quads_u8), 64);
  EXPECT_EQ(sparse::x_column_bytes(Int8Layout::pairs_i16), 32);
  EXPECT_EQ(sparse::x_column_bytes(Int8Layout::quads_u8), 64);
  // Slice-major: token 17 of a 5-column layer sits in slice 1, after slice 0's 5 columns.
  EXPECT_EQ(sparse::x_offset(Int8Layout::pairs_i16, 5, 17, 2), (1 * 5 + 2) * 32 + 1 * 2);
  EXPECT_EQ(sparse::x_offset(Int8Layout::quads_u8, 5, 70, 3), (1 * 5 + 3) * 64 + 6);
}

TEST(Int8Pack, ChunkTokenIsAPermutation) {
  for (auto layout : {Int8Layout::pairs_i16, Int8Layout::quads_u8}) {
    std::vector<int> tokens;
    for (int slot = 0; slot < sparse::kChunkTokens; ++slot)
      tokens.push_back(sparse::chunk_token(layout, slot));
    std::vector<int> sorted = tokens;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int> identity(sparse::kChunkTokens);
    std::iota(identity.begin(), identity.end(), 0);
    EXPECT_EQ(sorted, identity) << "layout " << static_cast<int>(layout);
  }
  // The lane orders the header describes.
  EXPECT_EQ(sparse::chunk_token(Int8Layout::pairs_i16, 4), 8);
  EXPECT_EQ(sparse::chunk_token(Int8Layout::pairs_i16, 8), 4);
  EXPECT_EQ(sparse::chunk_token(Int8Layout::pairs_i16, 20), 24);
  EXPECT_EQ(sparse::chunk_token(Int8Layout::quads_u8, 4), 16);
  EXPECT_EQ(sparse::chunk_token(Int8Layout::quads_u8, 16), 4);
  EXPECT_EQ(sparse::chunk_token(Int8Layout::quads_u8, 63), 63);
}

// An s8 [out x in] weight whose 4x1 blocks of group g are non-zero exactly in columns cols[g].
std::vector<int8_t> weight_with_columns(int64_t out, int64_t in,
                                        const std::vector<std::vector<int64_t>>& cols,
                                        uint32_t seed) {
  std::vector<int8_t> w(static_cast<size_t>(out * in), 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-128, 127), row_count(1, 4);
  for (int64_t g = 0; g < static_cast<int64_t>(cols.size()); ++g)
    for (int64_t c : cols[g]) {
      const int64_t rows_here = std::min<int64_t>(4, out - g * 4);
      // Some rows of the block zero, at least one not.
      const int64_t keep = std::min<int64_t>(rows_here, row_count(rng));
      for (int64_t r = 0; r < keep; ++r) {
        int v = 0;
        while (v == 0) v = value(rng);
        w[(g * 4 + (r + c) % rows_here) * in + c] = static_cast<int8_t>(v);
      }
    }
  return w;
}

void check_int8_pack(const std::vector<int8_t>& wq, int64_t out, int64_t in, Int8Layout layout,
                     bool with_bias, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "out=" << out << " in=" << in << " layout="
                                  << static_cast<int>(layout) << " bias=" << with_bias);
  const auto scale = test::random_floats(static_cast<size_t>(out), seed, 0.001f, 0.1f);
  const auto bias = test::random_floats(static_cast<size_t>(out), seed + 1);
  const auto p = sparse::pack_int8_4x1(wq.data(), scale.data(), with_bias ? bias.data() : nullptr,
                                       out, in, layout);
  EXPECT_EQ(sparse::to_dense(p), wq);
  EXPECT_EQ(p.layout, layout);
  EXPECT_EQ(p.out, out);
  EXPECT_EQ(p.in, in);

  const int64_t groups = (out + 3) / 4;
  const int per_entry = sparse::cols_per_entry(layout), bytes = sparse::entry_bytes(layout);
  ASSERT_EQ(p.groups(), groups);
  ASSERT_EQ(static_cast<int64_t>(p.group_begin.size()), groups + 1);
  EXPECT_EQ(p.group_begin[0], 0);
  ASSERT_EQ(static_cast<int64_t>(p.entries.size()),
            (p.group_begin.back() + sparse::kEntryReadAhead) * bytes);
  // The read-ahead padding is all zeros.
  EXPECT_TRUE(std::all_of(p.entries.begin() + p.group_begin.back() * bytes, p.entries.end(),
                          [](uint8_t b) { return b == 0; }));
  int64_t blocks = 0;
  for (int64_t g = 0; g < groups; ++g) {
    // The columns where this group's 4x1 block holds a non-zero, ascending.
    std::vector<int64_t> cols;
    for (int64_t c = 0; c < in; ++c)
      for (int64_t r = g * 4; r < std::min(out, g * 4 + 4); ++r)
        if (wq[r * in + c] != 0) {
          cols.push_back(c);
          break;
        }
    blocks += static_cast<int64_t>(cols.size());
    const int64_t entries = (static_cast<int64_t>(cols.size()) + per_entry - 1) / per_entry;
    ASSERT_EQ(p.group_begin[g + 1] - p.group_begin[g], entries) << "group " << g;
    // Decode the entries: offsets, weights, and the short last bundle's padding.
    for (int64_t e = 0; e < entries; ++e) {
      const uint8_t* entry = p.entries.data() + (p.group_begin[g] + e) * bytes;
      for (int j = 0; j < per_entry; ++j) {
        const int64_t k = e * per_entry + j;
        const bool real = k < static_cast<int64_t>(cols.size());
        const int64_t c = real ? cols[k] : cols[e * per_entry];
        uint32_t offset;
        std::memcpy(&offset, entry + 4 * j, 4);
        EXPECT_EQ(static_cast<int64_t>(offset), c * sparse::x_column_bytes(layout))
            << "group " << g << " slot " << k;
        for (int r = 0; r < 4; ++r) {
          const int64_t row = g * 4 + r;
          const int want = real && row < out ? wq[row * in + c] : 0;
          int got;
          if (layout == Int8Layout::pairs_i16) {
            int16_t v;
            std::memcpy(&v, entry + 8 + 4 * r + 2 * j, 2);
            got = v;
          } else {
            got = static_cast<int8_t>(entry[16 + 4 * r + j]);
          }
          EXPECT_EQ(got, want) << "group " << g << " slot " << k << " row " << r;
        }
      }
    }
  }
  EXPECT_EQ(p.nonzero_blocks, blocks);

  ASSERT_EQ(static_cast<int64_t>(p.scales.size()), groups * 4);
  ASSERT_EQ(static_cast<int64_t>(p.bias.size()), groups * 4);
  ASSERT_EQ(static_cast<int64_t>(p.compensation.size()), groups * 4);
  for (int64_t r = 0; r < groups * 4; ++r) {
    const bool real = r < out;
    EXPECT_EQ(p.scales[r], real ? scale[r] : 0.0f) << "row " << r;
    EXPECT_EQ(p.bias[r], real && with_bias ? bias[r] : 0.0f) << "row " << r;
    int32_t rowsum = 0;
    for (int64_t i = 0; real && i < in; ++i) rowsum += wq[r * in + i];
    EXPECT_EQ(p.compensation[r], layout == Int8Layout::quads_u8 ? 128 * rowsum : 0) << "row " << r;
  }
}

TEST(Int8Pack, RoundTripOddColumnCountsAndRaggedOut) {
  // out = 14: groups of 4, 4, 4 and 2 rows. Non-zero column counts 5, 3, 0 and 1 (odd and empty),
  // so both layouts need a short last bundle.
  const int64_t out = 14, in = 19;
  const std::vector<std::vector<int64_t>> cols = {{0, 3, 7, 12, 18}, {1, 2, 17}, {}, {9}};
  const auto wq = weight_with_columns(out, in, cols, 3);
  for (auto layout : {Int8Layout::pairs_i16, Int8Layout::quads_u8})
    for (bool bias : {false, true}) check_int8_pack(wq, out, in, layout, bias, 11);
}

TEST(Int8Pack, RoundTripRandomShapes) {
  uint32_t seed = 400;
  for (auto layout : {Int8Layout::pairs_i16, Int8Layout::quads_u8})
    for (int64_t out : {1, 3, 4, 5, 13, 33})
      for (int64_t in : {1, 2, 3, 7, 64}) {
        auto wq = test::random_int8(static_cast<size_t>(out * in), seed++, -128, 127);
        std::mt19937 rng(seed++);
        std::bernoulli_distribution zero(0.6);
        for (int64_t g = 0; g < (out + 3) / 4; ++g)
          for (int64_t c = 0; c < in; ++c)
            if (zero(rng))
              for (int64_t r = g * 4; r < std::min(out, g * 4 + 4); ++r) wq[r * in + c] = 0;
        check_int8_pack(wq, out, in, layout, true, seed++);
      }
}

TEST(Int8Pack, FullScaleCompensation) {
  // 128 * rowsum at the extremes: -128 * in and 127 * in.
  const int64_t out = 3, in = 40;
  std::vector<int8_t> wq(out * in, 127);
  std::fill(wq.begin(), wq.begin() + in, int8_t{-128});
  std::fill(wq.begin() + 2 * in, wq.end(), int8_t{0});
  const std::vector<float> scale(out, 1.0f);
  const auto p =
      sparse::pack_int8_4x1(wq.data(), scale.data(), nullptr, out, in, Int8Layout::quads_u8);
  EXPECT_EQ(p.compensation[0], 128 * -128 * in);
  EXPECT_EQ(p.compensation[1], 128 * 127 * in);
  EXPECT_EQ(p.compensation[2], 0);
  EXPECT_EQ(p.nonzero_blocks, in);
  EXPECT_EQ(sparse::to_dense(p), wq);
}

TEST(Int8Pack, InvalidArguments) {
  const std::vector<int8_t> wq(8, 1);
  const std::vector<float> scale(2, 1.0f);
  for (auto layout : {Int8Layout::pairs_i16, Int8Layout::quads_u8}) {
    EXPECT_THROW(sparse::pack_int8_4x1(nullptr, scale.data(), nullptr, 2, 4, layout),
                 InvalidArgument);
    EXPECT_THROW(sparse::pack_int8_4x1(wq.data(), nullptr, nullptr, 2, 4, layout), InvalidArgument);
    EXPECT_THROW(sparse::pack_int8_4x1(wq.data(), scale.data(), nullptr, 0, 4, layout),
                 InvalidArgument);
    EXPECT_THROW(sparse::pack_int8_4x1(wq.data(), scale.data(), nullptr, 2, 0, layout),
                 InvalidArgument);
  }
}

TEST(Int8Activations, LandWhereTheLayoutSays) {
  uint32_t seed = 500;
  for (auto layout : {Int8Layout::pairs_i16, Int8Layout::quads_u8})
    for (auto [tokens, in] : {std::pair<int64_t, int64_t>{70, 5}, {1, 3}, {64, 2}, {130, 7}}) {
      SCOPED_TRACE(testing::Message() << "layout=" << static_cast<int>(layout)
                                      << " tokens=" << tokens << " in=" << in);
      const auto xq = test::random_int8(static_cast<size_t>(tokens * in), seed++, -128, 127);
      const auto x_scale = test::random_floats(static_cast<size_t>(tokens), seed++, 0.01f, 1.0f);
      const int64_t chunks = (tokens + 63) / 64;
      const int elem = layout == Int8Layout::pairs_i16 ? 2 : 1;
      const int64_t slice = layout == Int8Layout::pairs_i16 ? 16 : 64;  // tokens per slice
      std::vector<uint8_t> x(static_cast<size_t>(chunks * 64 * in * elem), 0xA5);
      std::vector<float> scales(static_cast<size_t>(chunks * 64), -7.0f);
      sparse::layout_activations(xq.data(), x_scale.data(), tokens, in, layout, x.data(),
                                 scales.data());
      std::vector<int8_t> decoded(xq.size(), 99);
      int64_t bad_padding = 0;
      for (int64_t ch = 0; ch < chunks; ++ch)
        for (int64_t i = 0; i < in; ++i)
          for (int64_t p = 0; p < 64; ++p) {
            const int64_t t = ch * 64 + p;
            // Slices of `slice` tokens, each [in][slice]: token t, column i.
            const uint8_t* at = x.data() + ((t / slice * in + i) * slice + t % slice) * elem;
            int v;
            if (layout == Int8Layout::pairs_i16) {
              int16_t v16;
              std::memcpy(&v16, at, 2);
              v = v16;
            } else {
              v = int{*at} - 128;
            }
            if (t < tokens) {
              ASSERT_GE(v, -128);
              ASSERT_LE(v, 127);
              decoded[t * in + i] = static_cast<int8_t>(v);
            } else {
              // Padding tokens hold q = 0: s16 0, or u8 128.
              bad_padding += layout == Int8Layout::pairs_i16 ? (at[0] | at[1]) != 0 : *at != 128;
            }
          }
      EXPECT_EQ(decoded, xq);
      EXPECT_EQ(bad_padding, 0);
      for (int64_t ch = 0; ch < chunks; ++ch)
        for (int slot = 0; slot < 64; ++slot) {
          const int64_t t = ch * 64 + sparse::chunk_token(layout, slot);
          EXPECT_EQ(scales[ch * 64 + slot], t < tokens ? x_scale[t] : 0.0f)
              << "chunk " << ch << " slot " << slot;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bf16

TEST(Bf16, RoundsToNearestEven) {
  const float one = 1.0f;
  EXPECT_EQ(sparse::to_bf16(one), 0x3f80);
  EXPECT_EQ(sparse::to_bf16(one + std::ldexp(1.0f, -8)), 0x3f80);      // tie, down to even
  EXPECT_EQ(sparse::to_bf16(one + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie, up to even
  EXPECT_EQ(sparse::to_bf16(one + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  EXPECT_EQ(sparse::to_bf16(one + std::ldexp(1.0f, -9)), 0x3f80);  // below half
  EXPECT_EQ(sparse::to_bf16(-(one + std::ldexp(1.0f, -8))), 0xbf80);
  EXPECT_EQ(sparse::to_bf16(-(one + 3 * std::ldexp(1.0f, -8))), 0xbf82);
  EXPECT_EQ(sparse::to_bf16(0.0f), 0x0000);
  EXPECT_EQ(sparse::to_bf16(-0.0f), 0x8000);
  // Carry into the exponent: the largest value below 2 rounds to 2.
  EXPECT_EQ(sparse::to_bf16(std::nextafter(2.0f, 0.0f)), 0x4000);
  // Infinity stays infinity; the largest finite float rounds up to infinity.
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(sparse::to_bf16(inf), 0x7f80);
  EXPECT_EQ(sparse::to_bf16(-inf), 0xff80);
  EXPECT_EQ(sparse::to_bf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(Bf16, FromBf16IsExactAndRoundTrips) {
  EXPECT_EQ(sparse::from_bf16(0x3f80), 1.0f);
  EXPECT_EQ(sparse::from_bf16(0xc040), -3.0f);
  EXPECT_EQ(sparse::from_bf16(0x3f81), 1.0f + std::ldexp(1.0f, -7));
  // Every finite bf16 value survives from_bf16 -> to_bf16.
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const auto h = static_cast<uint16_t>(b);
    if ((h & 0x7f80) == 0x7f80) continue;  // inf / NaN
    ASSERT_EQ(sparse::to_bf16(sparse::from_bf16(h)), h) << std::hex << b;
  }
}

TEST(Bf16, NaNStaysNaN) {
  const float quiet = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(sparse::from_bf16(sparse::to_bf16(quiet))));
  EXPECT_TRUE(std::isnan(sparse::from_bf16(sparse::to_bf16(-quiet))));
  // Payload only in the low 16 bits: truncation alone would turn it into infinity.
  for (uint32_t bits : {0x7f800001u, 0xff800001u, 0x7f80ffffu, 0x7fffffffu}) {
    const float nan = std::bit_cast<float>(bits);
    ASSERT_TRUE(std::isnan(nan));
    EXPECT_TRUE(std::isnan(sparse::from_bf16(sparse::to_bf16(nan)))) << std::hex << bits;
  }
}

TEST(Bf16, VectorOverloadMatchesScalar) {
  auto v = test::random_floats(257, 42, -1e4f, 1e4f);
  v.push_back(std::numeric_limits<float>::quiet_NaN());
  v.push_back(1.0f + std::ldexp(1.0f, -8));
  const auto h = sparse::to_bf16(std::span<const float>(v));
  ASSERT_EQ(h.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(h[i], sparse::to_bf16(v[i])) << i;
}

}  // namespace
}  // namespace sparq
