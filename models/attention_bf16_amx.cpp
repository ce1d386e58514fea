// The bf16 attention of one head with both products on AMX tiles (target attributes; called only
// where bf16_attention_runs_on_amx): the roundings of attention_head_bf16's portable twin. One tile
// configuration for both products: tiles 0-3 hold a 32 x 32 block of fp32 sums, 4-5 two 16-row
// blocks of A, 6-7 two 16-column blocks of B, every tile 16 rows of 64 bytes. Rows (queries and
// keys) and the head dimension are padded with zeros to multiples of 32: zero dimensions add
// nothing to a score, zero keys are masked by the softmax, zero value columns are not written.
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge source, which its
// own -Wmaybe-uninitialized then reports inside immintrin.h at every call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "jit/cpu_features.hpp"
#include "models/attention.hpp"
#include "src/amx_tiles.hpp"
#include "src/bf16_convert.hpp"
#include "src/transpose16_avx512.hpp"

namespace sparq::models {
namespace {

constexpr int64_t kBlock = 32;

int64_t padded(int64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

const AmxTileConfig kConfig = sixteen_rows_of_64_bytes();

// c [32 x 32] fp32 (rows c_row floats apart) = the sum over `steps` of A [32 x 32 bf16] x B
// [16 dword pairs x 32]: A's two 16-row halves at a0 and a1 (rows a_stride bytes apart), advanced
// by 32 bf16 values per step; B's rows b_stride bytes apart, its right half 16 dwords on, advanced
// by b_step dwords per step.
__attribute__((target("amx-tile,amx-bf16"))) void block_32x32(const uint16_t* a0,
                                                              const uint16_t* a1, int64_t a_stride,
                                                              const uint32_t* b, int64_t b_stride,
                                                              int64_t b_step, int64_t steps,
                                                              float* c, int64_t c_row) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < steps; ++s) {
    _tile_loadd(4, a0 + s * kBlock, a_stride);
    _tile_loadd(5, a1 + s * kBlock, a_stride);
    _tile_loadd(6, b + s * b_step, b_stride);
    _tile_loadd(7, b + s * b_step + 16, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  const int64_t c_stride = c_row * 4;
  _tile_stored(0, c, c_stride);
  _tile_stored(1, c + 16, c_stride);
  _tile_stored(2, c + 16 * c_row, c_stride);
  _tile_stored(3, c + 16 * c_row + 16, c_stride);
}

// c [m][n] fp32 = a [m][k] bf16 x b, b given as b_pairs [k / 2][n] (pairs of b's consecutive rows
// as dwords); m, n, k multiples of 32.
__attribute__((target("amx-tile,amx-bf16"))) void product(const uint16_t* a,
                                                          const uint32_t* b_pairs, int64_t m,
                                                          int64_t n, int64_t k, float* c) {
  _tile_loadconfig(&kConfig);
  for (int64_t i = 0; i < m; i += kBlock)
    for (int64_t j = 0; j < n; j += kBlock)
      block_32x32(a + i * k, a + (i + 16) * k, k * 2, b_pairs + j, n * 4, 16 * n, k / kBlock,
                  c + i * n + j, n);
  _tile_release();
}

#define SPARQ_AVX512BW __attribute__((target("avx512f,avx512bw")))

// k_pairs [dp / 2][rows] = the transpose of kb viewed as [rows][dp / 2] dwords (a key's
// dimension pairs), in 16 x 16 blocks (rows and dp / 2 are multiples of 16).
SPARQ_AVX512BW void key_pairs(const uint16_t* kb, int64_t rows, int64_t dp, uint32_t* k_pairs) {
  const auto* k = reinterpret_cast<const uint32_t*>(kb);
  const int64_t pairs = dp / 2;
  for (int64_t j0 = 0; j0 < rows; j0 += 16)
    for (int64_t r0 = 0; r0 < pairs; r0 += 16) {
      __m512i t[16];
      for (int i = 0; i < 16; ++i) t[i] = _mm512_loadu_si512(k + (j0 + i) * pairs + r0);
      sparq::detail::transpose16(t);
      for (int c = 0; c < 16; ++c) _mm512_storeu_si512(k_pairs + (r0 + c) * rows + j0, t[c]);
    }
}

// v_pairs [rows / 2][dp]: value rows 2r and 2r + 1 interleaved per dimension (a dword each).
SPARQ_AVX512BW void value_pairs(const uint16_t* vb, int64_t rows, int64_t dp, uint32_t* v_pairs) {
  alignas(64) static constexpr uint16_t kLow[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                                    37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                                    11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i low = _mm512_load_si512(kLow);
  const __m512i high = _mm512_add_epi16(low, _mm512_set1_epi16(16));
  for (int64_t r = 0; r < rows / 2; ++r)
    for (int64_t c = 0; c < dp; c += 32) {
      const __m512i a = _mm512_loadu_si512(vb + 2 * r * dp + c);
      const __m512i b = _mm512_loadu_si512(vb + (2 * r + 1) * dp + c);
      _mm512_storeu_si512(v_pairs + r * dp + c, _mm512_permutex2var_epi16(a, low, b));
      _mm512_storeu_si512(v_pairs + r * dp + c + 16, _mm512_permutex2var_epi16(a, high, b));
    }
}

// ctx rows = the context's first d dimensions times each row's 1 / sum.
SPARQ_AVX512BW void scaled_context(const float* context, int64_t dp, const float* inv, int64_t len,
                                   int64_t d, float* ctx, int64_t ctx_stride) {
  for (int64_t i = 0; i < len; ++i) {
    const __m512 scale = _mm512_set1_ps(inv[i]);
    for (int64_t c = 0; c < d; c += 16) {
      const auto m = static_cast<__mmask16>(d - c >= 16 ? 0xffff : (1u << (d - c)) - 1);
      _mm512_mask_storeu_ps(ctx + i * ctx_stride + c, m,
                            _mm512_mul_ps(_mm512_maskz_loadu_ps(m, context + i * dp + c), scale));
    }
  }
}

#undef SPARQ_AVX512BW

}  // namespace

bool bf16_attention_runs_on_amx(int64_t d) {
  const jit::CpuFeatures& f = jit::cpu_features();
  return f.amx_tile && f.amx_bf16 && jit::amx_allowed() && bf16_attention_runs_natively(d);
}

namespace detail {

namespace {

// The head from its q, k, v rows: `fill(m, src)` writes src's len rows of d values into m, a
// [rows][dp] bf16 buffer whose padding is zero.
template <typename Fill>
void head_on_tiles(const void* q, const void* k, const void* v, int64_t len, int64_t d, float* ctx,
                   int64_t ctx_stride, std::vector<float>& scratch, const Fill& fill) {
  const int64_t rows = padded(len), dp = padded(d);
  const auto size = [](int64_t n) { return static_cast<size_t>(n); };
  // Per thread, reused: q, k, v rounded to bf16 [rows][dp] (zero padding), k's dimension pairs
  // [dp / 2][rows] (one key per column) and v's key pairs [rows / 2][dp] (one dimension per
  // column) as the tiles' B operands, the probabilities [rows][rows].
  thread_local std::vector<uint16_t> qb, kb, vb, probs;
  thread_local std::vector<uint32_t> k_pairs, v_pairs;
  for (std::vector<uint16_t>* m : {&qb, &kb, &vb}) {
    m->resize(size(rows * dp));
    // The padding: the columns past d of the len rows, then the rows past len.
    if (dp > d)
      for (int64_t i = 0; i < len; ++i)
        std::fill(m->begin() + i * dp + d, m->begin() + (i + 1) * dp, uint16_t{0});
    std::fill(m->begin() + len * dp, m->end(), uint16_t{0});
  }
  k_pairs.resize(qb.size() / 2);
  v_pairs.resize(qb.size() / 2);
  probs.resize(size(rows * rows));
  // scratch: the scores [rows][rows], the context [rows][dp], 1 / the row sums [rows].
  scratch.resize(size(rows * rows + rows * dp + rows));
  float* scores = scratch.data();
  float* context = scores + rows * rows;
  float* inv = context + rows * dp;
  fill(qb.data(), q);
  fill(kb.data(), k);
  fill(vb.data(), v);
  key_pairs(kb.data(), rows, dp, k_pairs.data());
  value_pairs(vb.data(), rows, dp, v_pairs.data());
  product(qb.data(), k_pairs.data(), rows, rows, dp, scores);
  // exp((s - max) scale) over each row's len keys, zero past them; inv = 1 / the fp32 sum.
  softmax_rows_avx512(scores, rows, len, rows, 1.0f / std::sqrt(static_cast<float>(d)), inv);
  convert_to_bf16(scores, probs.data(), rows * rows);
  product(probs.data(), v_pairs.data(), rows, dp, rows, context);
  scaled_context(context, dp, inv, len, d, ctx, ctx_stride);
}

}  // namespace

void attention_head_bf16_amx(const float* q, const float* k, const float* v, int64_t len, int64_t d,
                             int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch) {
  head_on_tiles(q, k, v, len, d, ctx, ctx_stride, scratch, [&](uint16_t* m, const void* src) {
    convert_rows_to_bf16(static_cast<const float*>(src), stride, m, padded(d), len, d);
  });
}

}  // namespace detail

void attention_head_bf16_amx(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t len,
                             int64_t d, int64_t stride, float* ctx, int64_t ctx_stride,
                             std::vector<float>& scratch) {
  detail::head_on_tiles(q, k, v, len, d, ctx, ctx_stride, scratch,
                        [&](uint16_t* m, const void* src) {
                          const auto* rows = static_cast<const uint16_t*>(src);
                          const int64_t dp = padded(d);
                          for (int64_t i = 0; i < len; ++i)
                            std::copy_n(rows + i * stride, d, m + i * dp);
                        });
}

}  // namespace sparq::models

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
