#include "src/kernel_registry.hpp"

#include <cstdio>
#include <cstdlib>

#include "jit/cpu_features.hpp"
#include "jit/cpu_tuning.hpp"
#include "jit/f32_block_kernel.hpp"
#include "sparq/error.hpp"
#include "sparse/int8_decode_pack.hpp"
#include "sparse/stats.hpp"
#include "src/amx_16x1_linear.hpp"
#include "src/bf16_sparse_input_linear.hpp"
#include "src/dense_linear.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/f32_decode_linear.hpp"
#include "src/f32_tile_linear.hpp"
#include "src/int8_block_linear.hpp"
#include "src/int8_decode_linear.hpp"
#include "src/int8_nm_linear.hpp"
#include "src/int8_nm_prefill_linear.hpp"
#include "src/int8_sparse_input_linear.hpp"
#include "src/kernel_thresholds.hpp"
#include "src/nm_table_linear.hpp"

namespace sparq {

namespace {
jit::PostOps post_ops(const LayerDescription& d) {
  return {d.options.activation, d.options.operand};
}
}  // namespace
namespace {

using Why = std::optional<std::string>;
using Shape = WeightShape;
const Why kNo = std::nullopt;

std::string percent(double fraction) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * fraction);
  return text;
}

// An explicitly requested RxC block pattern runs on the 4x1 kernels, which skip every all-zero
// 4x1 block: an R x C block with R a multiple of 4 is R/4 x C of them.
std::string block_reason(const Pattern& p, double block_sparsity) {
  if (p.block == BlockShape{4, 1}) return "pattern 4x1 requested";
  return "pattern " + p.to_string() + " requested; the 4x1 kernel runs it (" +
         percent(block_sparsity) + " of 4x1 blocks are zero" +
         (p.block.rows % 4 == 0 ? ")" : ": " + p.to_string() + " blocks do not stack into 4x1)");
}

std::string decode_calls() { return "calls of <= " + std::to_string(kDecodeTokens) + " tokens "; }

// SPARQ_INT8_2OF4_PREFILL=jit|table|dense: the kernel of int8 2:4 calls of more than 4 tokens on
// AVX-512 VNNI. Default jit, or dense where oneDNN's int8 GEMM runs on AMX tiles (the jit kernel
// ran 0.42x / 0.61x of it on 3072 x 768 / 4096 x 4096 at 128 tokens, docs/benchmarks-amx.md). A
// measurement switch: the table kernel (0.83-0.94x oneDNN on Zen 4) and the others stay reachable.
enum class Int8NmPrefill { jit, table, dense };
struct Int8NmPrefillChoice {
  Int8NmPrefill kernel;
  bool requested;  // by SPARQ_INT8_2OF4_PREFILL
};
Int8NmPrefillChoice int8_2of4_prefill() {
  const char* v = std::getenv("SPARQ_INT8_2OF4_PREFILL");
  if (v == nullptr || *v == 0)
    return {onednn_runs_amx(DType::int8) ? Int8NmPrefill::dense : Int8NmPrefill::jit, false};
  if (std::string(v) == "jit") return {Int8NmPrefill::jit, true};
  if (std::string(v) == "table") return {Int8NmPrefill::table, true};
  if (std::string(v) == "dense") return {Int8NmPrefill::dense, true};
  throw InvalidArgument(std::string("SPARQ_INT8_2OF4_PREFILL must be jit, table or dense, got '") +
                        v + "'");
}

std::string slow_note(jit::Isa isa, const char* lacks) {
  return isa == jit::Isa::reference
             ? std::string("this CPU lacks ") + lacks + ": portable C++ kernel (slow)"
             : std::string();
}

std::string join(std::string a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty()) a += "; " + b;
  return a;
}

// Where oneDNN's GEMM of the layer's dtype runs on AMX tiles: the fraction of zero 4x1 blocks
// below which it outruns sparq's tile kernels (0 elsewhere, and for fp32).
double block_sparsity_against_amx(const LayerDescription& d) {
  if (!onednn_runs_amx(d.options.dtype)) return 0.0;
  return d.int8() ? kMinBlockSparsityAgainstAmxInt8 : kMinBlockSparsityAgainstAmxBf16;
}

// Under auto, longer calls of a block-sparse int8 / bf16 weight too dense to beat oneDNN's AMX
// GEMM run on it; decode steps keep their kernels (rows in lanes stream fewer bytes).
Why amx_dense_prefill(const LayerDescription& d) {
  const double needed = block_sparsity_against_amx(d);
  if (d.shape != Shape::blocks || d.options.pattern.kind != Pattern::Kind::automatic ||
      d.block_sparsity >= needed)
    return kNo;
  return "longer calls dense on oneDNN's AMX " + std::string(to_string(d.options.dtype)) +
         " GEMM (faster here than the tile kernels below " + percent(needed) + " zero 4x1 blocks)";
}

// For an explicitly requested block pattern that oneDNN's AMX GEMM would outrun.
std::string amx_note(const LayerDescription& d) {
  const double needed = block_sparsity_against_amx(d);
  if (d.shape != Shape::blocks || d.block_sparsity >= needed) return "";
  return "oneDNN's AMX GEMM is faster here below " + percent(needed) +
         " zero 4x1 blocks (pattern auto runs it)";
}

// ---- int8 ------------------------------------------------------------------------------------

// Activation sparsity (LinearOptions::input_threshold) on AVX-512 VNNI: decode steps read only the
// weight columns of their non-zero inputs, whatever the weight's own structure.
Why int8_sparse_input_decode(const LayerDescription& d) {
  if (!d.int8() || d.options.input_threshold <= 0.0f ||
      jit::best_int8_isa() != jit::Isa::avx512_vnni)
    return kNo;
  const bool masked = Int8SparseInputLinear::masked_form(d.w_s8.data(), d.out, d.in);
  const bool long_rows = d.out >= Int8SparseInputLinear::kMinLongRows;
  const double needed = !masked && long_rows && d.shape == Shape::dense
                            ? kMinInputSparsityForInt8LongChunks
                        : masked && long_rows && d.shape == Shape::two_of_four
                            ? (jit::cpu_tuning().sparse_input_2of4_from_40_percent
                                   ? kMinInputSparsityForInt8Masked2of4LongChunksIntel
                                   : kMinInputSparsityForInt8Masked2of4LongChunks)
                            : kMinInputSparsityForSkipping;
  if (d.options.expected_input_sparsity < static_cast<float>(needed)) return kNo;
  return decode_calls() + "zero inputs below " + std::to_string(d.options.input_threshold) +
         " and run the sparse-input decode kernel on the " +
         (masked ? "masked (zero weights skipped)" : "dense") + " column layout";
}
std::shared_ptr<const LinearKernel> pack_int8_sparse_input_decode(const LayerDescription& d) {
  return std::make_shared<Int8SparseInputLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out,
                                                 d.in, post_ops(d), d.pool());
}

Why int8_nm_decode(const LayerDescription& d) {
  if (!d.int8() || d.shape != Shape::two_of_four) return kNo;
  return join(decode_calls() + "run the int8 2:4 kernel (62.5% of the dense weight bytes)",
              slow_note(jit::best_int8_isa(), "AVX2"));
}
std::shared_ptr<const LinearKernel> pack_int8_nm_decode(const LayerDescription& d) {
  return std::make_shared<Int8NmLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                        post_ops(d), jit::best_int8_isa(), d.pool());
}

// Decode steps run the 16x1 decode kernel on any weight the int8 tile kernels run (blocks, or
// dense ones where oneDNN's int8 GEMM is inexact): it streams the weight once with rows in lanes,
// where the 4x1 tile kernel would spend 16 token lanes on each (on a dense weight 3.4x oneDNN's
// int8 GEMV, the 4x1 kernel on an 80 % 4x1-sparse weight only 1.98x; AVX2, README decode table).
Why int8_16x1_decode(const LayerDescription& d) {
  if (!d.int8() || d.shape == Shape::two_of_four || d.in > sparse::kDecodeMaxIn) return kNo;
  if (d.shape == Shape::dense && onednn_int8_is_exact()) {
    if (d.threads < 2 || d.out * d.in > kMaxWeightsForOwnDenseInt8Decode) return kNo;
    return decode_calls() +
           "run the 16x1 decode kernel: a dense weight this small runs faster there than on "
           "oneDNN's multi-threaded GEMV (its threads' wake-up outweighs the call)";
  }
  return decode_calls() + "run the 16x1 decode kernel (" + percent(d.sparsity_16x1) +
         " of 16x1 blocks are zero)";
}
std::shared_ptr<const LinearKernel> pack_int8_16x1_decode(const LayerDescription& d) {
  return std::make_shared<Int8DecodeLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                            post_ops(d), jit::best_int8_isa(), d.pool());
}

// Rows in lanes, vpshufb-picked activations, half the vpdpbusd of a dense GEMM.
Why int8_nm_prefill(const LayerDescription& d) {
  if (!d.int8() || d.shape != Shape::two_of_four || jit::best_int8_isa() != jit::Isa::avx512_vnni ||
      int8_2of4_prefill().kernel != Int8NmPrefill::jit)
    return kNo;
  return std::string(
      "longer calls the int8 2:4 prefill kernel (half the vpdpbusd of a dense GEMM; 100% of the "
      "dense weight bytes)");
}
std::shared_ptr<const LinearKernel> pack_int8_nm_prefill(const LayerDescription& d) {
  return std::make_shared<Int8NmPrefillLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                               post_ops(d), d.pool());
}

// On request only: its table (36 combinations per 8 columns) lives in L2, and it runs 0.83-0.94x
// of oneDNN's GEMM on Zen 4.
Why int8_nm_table(const LayerDescription& d) {
  if (!d.int8() || d.shape != Shape::two_of_four || jit::best_int8_isa() != jit::Isa::avx512_vnni ||
      int8_2of4_prefill().kernel != Int8NmPrefill::table)
    return kNo;
  return std::string(
      "longer calls the int8 2:4 table kernel (75% of the dense weight bytes; "
      "SPARQ_INT8_2OF4_PREFILL=table)");
}
std::shared_ptr<const LinearKernel> pack_int8_nm_table(const LayerDescription& d) {
  return std::make_shared<NmTableLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                         post_ops(d), d.pool());
}

// AMX tiles over the columns each block of 16 rows uses (int8 and bf16): for weights requested as
// R x 1 blocks with R a multiple of 16, and under auto where enough 16x1 blocks are zero and they
// are not many more than the zero 4x1 blocks' share (else the 4x1 kernels, which skip each 4x1
// block, do less work: on a 90 % 4x1-pruned weight, 34 % of 16x1 blocks hold a non-zero and the
// int8 AMX kernel ran 1.3-1.4x slower than the VNNI one; docs/benchmarks-amx.md).
Why amx_16x1(const LayerDescription& d, bool available, double min_sparsity, DType dtype) {
  if (d.options.dtype != dtype || d.shape != Shape::blocks || !available) return kNo;
  const Pattern& p = d.options.pattern;
  const bool rx1 = p.kind == Pattern::Kind::block && p.block.rows % 16 == 0 && p.block.cols == 1;
  const bool automatic =
      p.kind == Pattern::Kind::automatic && d.sparsity_16x1 >= min_sparsity &&
      1.0 - d.sparsity_16x1 <= kMax16x1DensityPer4x1DensityForAmx * (1.0 - d.block_sparsity);
  if (!rx1 && !automatic) return kNo;
  std::string why = "longer calls on AMX tiles over the columns each 16 rows use (" +
                    percent(d.sparsity_16x1) + " of 16x1 blocks are zero)";
  if (d.sparsity_16x1 < min_sparsity && onednn_runs_amx(dtype))
    why += "; oneDNN's AMX GEMM is faster here below " + percent(min_sparsity) +
           " zero 16x1 blocks (pattern auto runs it)";
  return why;
}
Why int8_16x1_amx(const LayerDescription& d) {
  return amx_16x1(d, Int8Amx16x1Linear::available(), kMinBlockSparsity16x1ForAmxInt8, DType::int8);
}
std::shared_ptr<const LinearKernel> pack_int8_16x1_amx(const LayerDescription& d) {
  return std::make_shared<Int8Amx16x1Linear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                             post_ops(d), d.pool());
}

Why bf16_16x1_amx(const LayerDescription& d) {
  return amx_16x1(d, Bf16Amx16x1Linear::available(), kMinBlockSparsity16x1ForAmxBf16, DType::bf16);
}
std::shared_ptr<const LinearKernel> pack_bf16_16x1_amx(const LayerDescription& d) {
  return std::make_shared<Bf16Amx16x1Linear>(d.weight, d.bias, d.out, d.in, post_ops(d), d.pool());
}

// oneDNN 2.6's int8 GEMM multiplies with vpmaddubsw on CPUs without VNNI, which saturates 16-bit
// sums of two products: full-range int8 data gives wrong results. There, dense and 2:4 int8
// layers run on sparq's exact 4x1 kernel instead.
Why int8_dense(const LayerDescription& d) {
  if (!d.int8() || d.shape == Shape::blocks || !onednn_int8_is_exact()) return kNo;
  if (d.shape != Shape::two_of_four) return std::string();
  if (jit::best_int8_isa() != jit::Isa::avx512_vnni)
    return std::string(
        "longer calls dense on oneDNN (sparq's int8 2:4 prefill kernel needs AVX-512 VNNI; the 4x1 "
        "kernel skips almost nothing there)");
  const Int8NmPrefillChoice prefill = int8_2of4_prefill();
  if (prefill.kernel != Int8NmPrefill::dense) return kNo;
  return prefill.requested
             ? std::string("longer calls dense on oneDNN (SPARQ_INT8_2OF4_PREFILL=dense)")
             : std::string(
                   "longer calls dense on oneDNN's AMX int8 GEMM (faster here "
                   "than sparq's int8 2:4 prefill kernel on VNNI)");
}

Why int8_4x1(const LayerDescription& d) {
  if (!d.int8()) return kNo;
  std::string why;
  if (d.shape == Shape::two_of_four)
    why = "longer calls the 4x1 kernel (oneDNN's int8 GEMM is inexact without VNNI)";
  else if (d.shape == Shape::dense)
    why =
        "this CPU has no VNNI, where oneDNN's int8 GEMM saturates 16-bit intermediate sums, so "
        "sparq's exact int8 kernel runs it (all-zero 4x1 blocks, if any, are skipped)";
  return join(join(why, amx_note(d)), slow_note(jit::best_int8_isa(), "AVX2"));
}
std::shared_ptr<const LinearKernel> pack_int8_4x1(const LayerDescription& d) {
  return std::make_shared<Int8BlockLinear>(d.w_s8.data(), d.w_scale.data(), d.bias, d.out, d.in,
                                           post_ops(d), jit::best_int8_isa(), d.pool());
}

// ---- fp32 / bf16 ------------------------------------------------------------------------------

// Activation sparsity on bf16 layers with AVX-512: decode steps read only the bf16 weight columns
// of their non-zero inputs, whatever the weight's own structure.
Why bf16_sparse_input_decode(const LayerDescription& d) {
  if (!d.bf16() || d.options.input_threshold <= 0.0f || jit::best_float_isa() < jit::Isa::avx512)
    return kNo;
  const auto plan = Bf16SparseInputLinear::plan(d.weight, d.out, d.in, d.threads);
  const bool long_chunks = plan.chunk_rows > 256;
  const double needed = !long_chunks  ? kMinInputSparsityForSkipping
                        : plan.masked ? kMinInputSparsityForBf16MaskedLongChunks
                                      : kMinInputSparsityForBf16LongChunks;
  if (d.options.expected_input_sparsity < static_cast<float>(needed)) return kNo;
  return decode_calls() + "zero inputs below " + std::to_string(d.options.input_threshold) +
         " and run the bf16 sparse-input decode kernel on the " +
         (plan.masked ? "masked (zero weights skipped)" : "dense") + " column layout (" +
         std::to_string(plan.chunk_rows) + "-row chunks)";
}
std::shared_ptr<const LinearKernel> pack_bf16_sparse_input_decode(const LayerDescription& d) {
  return std::make_shared<Bf16SparseInputLinear>(d.weight, d.bias, d.out, d.in, post_ops(d),
                                                 d.pool());
}

// Weights whose zeros come in 16x1 blocks: the decode kernel (rows in lanes; bf16 stored as bf16).
Why float_16x1_decode(const LayerDescription& d) {
  if (d.int8() || d.shape != Shape::blocks) return kNo;
  const Pattern& p = d.options.pattern;
  const bool rx1 = p.kind == Pattern::Kind::block && p.block.rows % 16 == 0 && p.block.cols == 1;
  const bool automatic =
      p.kind == Pattern::Kind::automatic && d.sparsity_16x1 >= kMinBlockSparsityForSparse;
  if (!rx1 && !automatic) return kNo;
  return decode_calls() + "run the 16x1 decode kernel (" + percent(d.sparsity_16x1) +
         " of 16x1 blocks are zero)";
}
std::shared_ptr<const LinearKernel> pack_float_16x1_decode(const LayerDescription& d) {
  return std::make_shared<F32DecodeLinear>(d.weight, d.bias, d.out, d.in, d.bf16(), post_ops(d),
                                           jit::best_float_isa(), d.pool());
}

// 2:4 on AVX-512: 16 x 4 blocks with rows in lanes (56 % of the dense fp32 bytes, 62.5 % of
// bf16): the tile kernels would spend 64 token lanes on one token.
Why float_nm_decode(const LayerDescription& d) {
  if (d.int8() || d.shape != Shape::two_of_four || jit::best_float_isa() < jit::Isa::avx512)
    return kNo;
  return decode_calls() + "run the 2:4 decode kernel";
}
std::shared_ptr<const LinearKernel> pack_float_nm_decode(const LayerDescription& d) {
  return std::make_shared<F32DecodeLinear>(d.weight, d.bias, d.out, d.in, d.bf16(), post_ops(d),
                                           jit::best_float_isa(), d.pool(), true);
}

// Elsewhere under auto, the tile kernels' 64-token (16 on AVX2) tiles and 20-40 byte entries
// lose to oneDNN's dense GEMV at decode unless the weight is very sparse (measured: docs/sweep,
// tokens 1): such layers keep the dense weight too.
Why float_dense_decode(const LayerDescription& d) {
  if (d.int8() || d.shape == Shape::dense || d.options.pattern.kind != Pattern::Kind::automatic)
    return kNo;
  if (d.shape == Shape::blocks && d.block_sparsity >= kMinBlockSparsityForF32Decode) return kNo;
  return decode_calls() + "run dense on oneDNN (faster there below " +
         percent(kMinBlockSparsityForF32Decode) + " 4x1 block sparsity)";
}

// bf16 2:4 with AVX512_BF16: 1.3-1.45x oneDNN's bf16 GEMM at 128 tokens on Zen 4 (a call's last
// 1..48 tokens on 32- and 16-token tiles). Not where that GEMM runs on AMX (0.22x / 0.45x of it on
// 3072 x 768 / 4096 x 4096): there bf16-2:4-amx-dense runs the longer calls.
Why bf16_nm_table(const LayerDescription& d) {
  if (!d.bf16() || d.shape != Shape::two_of_four || jit::best_float_isa() < jit::Isa::avx512 ||
      !jit::native_bf16_available() || onednn_runs_amx(DType::bf16))
    return kNo;
  return "calls of more than " + std::to_string(kDecodeTokens) +
         " tokens on the bf16 2:4 table kernel (vdpbf16ps on per-call tables of the kept "
         "activations)";
}
Why bf16_nm_amx_dense(const LayerDescription& d) {
  if (!d.bf16() || d.shape != Shape::two_of_four || !onednn_runs_amx(DType::bf16)) return kNo;
  return "calls of more than " + std::to_string(kDecodeTokens) +
         " tokens dense on oneDNN's AMX bf16 GEMM (faster here than sparq's 2:4 kernels)";
}

std::shared_ptr<const LinearKernel> pack_bf16_nm_table(const LayerDescription& d) {
  return std::make_shared<NmTableLinear>(d.weight, d.bias, d.out, d.in, post_ops(d), d.pool());
}

std::string bf16_note(const LayerDescription& d, bool vdpbf16ps) {
  if (!d.bf16()) return "";
  return vdpbf16ps ? "bf16 weights and activations on vdpbf16ps (AVX512_BF16)"
                   : "bf16 runs as bf16-rounded weights and activations on fp32 FMAs";
}

Why float_tiles(const LayerDescription& d) {
  if (d.int8() || d.shape == Shape::dense) return kNo;
  const bool vdpbf16ps = d.shape == Shape::blocks && jit::bf16_tiles_on_vdpbf16ps();
  return join(join(bf16_note(d, vdpbf16ps), amx_note(d)),
              slow_note(jit::best_float_isa(), "AVX2/FMA"));
}
std::shared_ptr<const LinearKernel> pack_float_tiles(const LayerDescription& d) {
  const auto layout = d.shape == Shape::two_of_four                ? jit::F32Layout::n2_m4
                      : d.bf16() && jit::bf16_tiles_on_vdpbf16ps() ? jit::F32Layout::bf16_4x1
                                                                   : jit::F32Layout::block_4x1;
  return std::make_shared<F32TileLinear>(d.weight, d.bias, d.out, d.in, layout, post_ops(d),
                                         jit::best_float_isa(), d.pool(), d.bf16());
}

Why float_dense(const LayerDescription& d) {
  if (d.int8()) return kNo;
  return d.bf16() && onednn_has_bf16() ? std::string("bf16 on oneDNN's bf16 GEMM")
                                       : bf16_note(d, false);
}

std::shared_ptr<const LinearKernel> pack_dense(const LayerDescription& d) {
  return std::make_shared<DenseLinear>(d);
}

constexpr KernelFamily kFamilies[] = {
    // int8: decode kernels first, then the longer calls' kernels.
    {"int8-sparse-input-decode", TokenRange::decode, int8_sparse_input_decode,
     pack_int8_sparse_input_decode},
    {"int8-2:4-decode", TokenRange::decode, int8_nm_decode, pack_int8_nm_decode},
    {"int8-16x1-decode", TokenRange::decode, int8_16x1_decode, pack_int8_16x1_decode},
    {"int8-2:4", TokenRange::prefill, int8_nm_prefill, pack_int8_nm_prefill},
    {"int8-2:4-table", TokenRange::prefill, int8_nm_table, pack_int8_nm_table},
    {"int8-dense", TokenRange::all, int8_dense, pack_dense},
    {"int8-16x1-amx", TokenRange::prefill, int8_16x1_amx, pack_int8_16x1_amx},
    {"bf16-16x1-amx", TokenRange::prefill, bf16_16x1_amx, pack_bf16_16x1_amx},
    // int8 and bf16 block-sparse weights under auto, where oneDNN runs on AMX.
    {"amx-dense", TokenRange::prefill, amx_dense_prefill, pack_dense},
    {"int8-4x1", TokenRange::all, int8_4x1, pack_int8_4x1},
    // fp32 / bf16
    {"bf16-sparse-input-decode", TokenRange::decode, bf16_sparse_input_decode,
     pack_bf16_sparse_input_decode},
    {"float-16x1-decode", TokenRange::decode, float_16x1_decode, pack_float_16x1_decode},
    {"float-2:4-decode", TokenRange::decode, float_nm_decode, pack_float_nm_decode},
    {"float-dense-decode", TokenRange::decode, float_dense_decode, pack_dense},
    {"bf16-2:4", TokenRange::prefill, bf16_nm_table, pack_bf16_nm_table},
    {"bf16-2:4-amx-dense", TokenRange::prefill, bf16_nm_amx_dense, pack_dense},
    {"float-tiles", TokenRange::all, float_tiles, pack_float_tiles},
    {"float-dense", TokenRange::all, float_dense, pack_dense},
};

}  // namespace

std::span<const KernelFamily> kernel_families() { return kFamilies; }

// The structure the weight is packed for: the pattern requested, or under auto the 4x1 kernels
// when enough 4x1 blocks are zero, 2:4 (fp32 / bf16) when the weight fits it, else dense.
void resolve_shape(LayerDescription& d, std::span<const float> w) {
  const Pattern& p = d.options.pattern;
  switch (p.kind) {
    case Pattern::Kind::n_m:
      d.shape = WeightShape::two_of_four;
      d.shape_reason = "pattern 2:4 requested";
      return;
    case Pattern::Kind::block:
      d.shape = WeightShape::blocks;
      d.shape_reason = p.block.cols == 1 && p.block.rows % 16 == 0 &&
                               ((d.int8() && Int8Amx16x1Linear::available()) ||
                                (d.bf16() && Bf16Amx16x1Linear::available()))
                           ? "pattern " + p.to_string() + " requested"
                           : block_reason(p, d.block_sparsity);
      return;
    case Pattern::Kind::dense:
      d.shape = WeightShape::dense;
      d.shape_reason = "pattern dense requested";
      return;
    case Pattern::Kind::automatic:
      break;
  }
  if (d.block_sparsity >= kMinBlockSparsityForSparse) {
    d.shape = WeightShape::blocks;
    d.shape_reason = "auto: " + percent(d.block_sparsity) +
                     " of 4x1 blocks are zero (>= " + percent(kMinBlockSparsityForSparse) + ")";
  } else if (!d.int8() && d.sparsity >= kMinSparsityFor2of4 &&
             sparse::fits_n_m(w, d.out, d.in, 2, 4)) {
    d.shape = WeightShape::two_of_four;
    d.shape_reason = "auto: the weight is 2:4 (" + percent(d.sparsity) + " zeros)";
  } else {
    d.shape = WeightShape::dense;
    d.shape_reason = "auto: only " + percent(d.block_sparsity) + " of 4x1 blocks are zero (< " +
                     percent(kMinBlockSparsityForSparse) +
                     ") and the weight is not 2:4: dense is " + "faster";
  }
}

KernelChoice choose_kernels(const LayerDescription& layer) {
  const KernelFamily* chosen[2] = {nullptr, nullptr};  // [prefill, decode]
  KernelChoice choice;
  for (const KernelFamily& family : kernel_families()) {
    for (int decode = 0; decode < 2; ++decode) {
      const TokenRange other = decode ? TokenRange::prefill : TokenRange::decode;
      if (chosen[decode] || family.range == other) continue;
      if (auto why = family.applies(layer)) {
        chosen[decode] = &family;
        (decode ? choice.decode_reason : choice.prefill_reason) = *why;
      }
    }
    if (chosen[0] && chosen[1]) break;
  }
  if (!chosen[0] || !chosen[1])
    throw NotSupported("no CPU kernel family applies to this layer (dtype " +
                       std::string(to_string(layer.options.dtype)) + ")");
  choice.prefill = chosen[0]->pack(layer);
  // Two families that pack alike (e.g. oneDNN's dense layer) share one kernel.
  if (chosen[1] != chosen[0] && chosen[1]->pack != chosen[0]->pack)
    choice.decode = chosen[1]->pack(layer);
  return choice;
}

}  // namespace sparq
