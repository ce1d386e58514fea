// The public SparseLinear: validates arguments, picks a kernel from the weight's structure, the
// dtype and the CPU, and forwards to it.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <vector>

#include "gpu/backend.hpp"
#include "jit/cpu_features.hpp"
#include "jit/row_epilogue.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
#include "sparse/stats.hpp"
#include "src/activation_quant.hpp"
#include "src/bf16_convert.hpp"
#include "src/cuda_backend.hpp"
#include "src/dnnl_matmul.hpp"
#include "src/f32_decode_linear.hpp"
#include "src/f32_tile_linear.hpp"
#include "src/int8_block_linear.hpp"
#include "src/int8_decode_linear.hpp"
#include "src/int8_nm_kernel.hpp"
#include "src/int8_nm_linear.hpp"
#include "src/kernel_thresholds.hpp"
#include "src/nm_table_linear.hpp"
#include "src/quantized_input.hpp"
#include "src/threading.hpp"

namespace sparq {

using sparse::require;

// The largest in_features whose int8 dot products cannot overflow int32 (127 * 127 * in < 2^31).
constexpr int64_t kMaxInFeatures = 131072;

QuantizedInput::QuantizedInput() : impl_(std::make_unique<Impl>()) {}
QuantizedInput::~QuantizedInput() = default;
QuantizedInput::QuantizedInput(QuantizedInput&&) noexcept = default;
QuantizedInput& QuantizedInput::operator=(QuantizedInput&&) noexcept = default;
int64_t QuantizedInput::tokens() const { return impl_ ? impl().tokens : 0; }

const char* cpu_isa_name() {
  static const std::string name = [] {
    const jit::Isa int8 = jit::best_int8_isa(), flt = jit::best_float_isa();
    if (int8 == jit::Isa::avx512_vnni || int8 == flt) return std::string(jit::isa_name(int8));
    return std::string("int8 ") + jit::isa_name(int8) + ", float " + jit::isa_name(flt);
  }();
  return name.c_str();
}

const char* cpu_features_name() {
  static const std::string name = [] {
    const std::string names = jit::cpu_features().names();
    return names.empty() ? std::string("none") : names;
  }();
  return name.c_str();
}

struct SparseLinear::Impl {
  int64_t out = 0, in = 0;
  LinearOptions options;
  LinearInfo info;
  std::optional<Int8BlockLinear> block;       // int8 4x1 kernels
  std::optional<Int8DecodeLinear> decode;     // int8 16x1 decode kernels (<= 4 tokens)
  std::optional<Int8NmLinear> nm;             // int8 2:4 kernel (decode-sized calls)
  std::optional<NmTableLinear> nm_table;      // int8 / bf16 2:4 table kernels (longer calls)
  std::optional<F32TileLinear> f32_tiles;     // f32 / bf16 4x1 and 2:4 kernels
  std::optional<F32DecodeLinear> f32_decode;  // f32 / bf16 16x1 decode kernels (<= 4 tokens)
  std::unique_ptr<gpu::DeviceLinear> cuda;    // the layer on a GPU (LinearOptions.device cuda)
  // Dense layers on oneDNN: the weights and one primitive per token count, made on first use.
  std::vector<float> w_f32, bias;
  std::vector<int8_t> w_s8;
  std::vector<float> w_scale;
  // Dense int8: the epilogue after oneDNN's s32 product, [residual][TileOutput] (null: portable),
  // the bias (zeros without one) and the threads the epilogue runs on.
  std::shared_ptr<const jit::RowEpilogue> row_epilogues[2][3];
  std::vector<float> dense_bias;
  tbb::task_arena* arena = nullptr;
  // Primitives for the most recent token counts (each holds its own reordered weights, so the
  // cache is bounded); shared_ptr keeps one alive while a thread runs it.
  static constexpr size_t kMaxDensePrimitives = 8;
  mutable std::mutex dense_mutex;
  mutable std::list<std::pair<int64_t, std::shared_ptr<const DnnlMatmul>>> dense;

  // Dense bf16 layers run oneDNN's bf16 GEMM where it has one (twice its f32 speed on AVX512_BF16),
  // else its f32 GEMM on bf16-rounded values.
  bool dense_bf16() const { return options.dtype == DType::bf16 && onednn_has_bf16(); }

  std::shared_ptr<const DnnlMatmul> dense_for(int64_t tokens) const {
    std::lock_guard lock(dense_mutex);
    for (auto it = dense.begin(); it != dense.end(); ++it)
      if (it->first == tokens) {
        dense.splice(dense.begin(), dense, it);  // most recently used first
        return dense.front().second;
      }
    std::shared_ptr<const DnnlMatmul> prim;
    if (options.dtype == DType::int8)
      prim = std::make_shared<DnnlMatmul>(DnnlMatmul::Kind::s8s8_s32, tokens, out, in, w_s8.data(),
                                          nullptr, nullptr, Activation::none, info.threads);
    else
      prim = std::make_shared<DnnlMatmul>(
          dense_bf16() ? DnnlMatmul::Kind::bf16 : DnnlMatmul::Kind::f32, tokens, out, in,
          w_f32.data(), nullptr, bias.empty() ? nullptr : bias.data(), options.activation,
          info.threads);
    dense.emplace_front(tokens, prim);
    if (dense.size() > kMaxDensePrimitives) dense.pop_back();
    return prim;
  }

  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
    if (nm && tokens > 0 && tokens <= kNmMaxTokens) {
      nm->quantize(x, tokens, q);
      return;
    }
    if (decode && tokens > 0 && tokens <= sparse::kDecodeMaxTokens) {
      decode->quantize(x, tokens, q);
      return;
    }
    if (block) {
      block->quantize(x, tokens, q);
      return;
    }
    if (nm_table) {
      nm_table->quantize(x, tokens, q);
      return;
    }
    require(x != nullptr, "forward: x must not be null");
    require(tokens > 0,
            [&] { return "forward: tokens must be positive, got " + std::to_string(tokens); });
    q.reserve(tokens * in, tokens);
    auto* xq = reinterpret_cast<int8_t*>(q.x.data());
    float* scales = q.scales.data();
    auto rows = [&](int64_t t0, int64_t t1) {
      quantize_rows(x + t0 * in, t1 - t0, in, xq + t0 * in, scales + t0);
    };
    if (arena)
      parallel_ranges(*arena, tokens, rows);
    else
      rows(0, tokens);
    q.form = QuantizedInput::Impl::Form::row_major;
    q.tokens = tokens;
    q.in = in;
  }

  // y: fp32, or bf16 when bf16_out.
  void run_f32(const float* x, int64_t tokens, void* y, const float* residual,
               bool bf16_out) const {
    if (f32_decode && tokens <= kF32DecodeTokens) {
      f32_decode->run(x, tokens, y, residual, bf16_out);
      return;
    }
    if (nm_table) {
      nm_table->run(x, tokens, y, residual, bf16_out);
      return;
    }
    const bool dense_decode = !w_f32.empty() && tokens <= kF32DecodeTokens;
    if (f32_tiles && !dense_decode) {
      f32_tiles->run(x, tokens, y, residual, bf16_out);
      return;
    }
    const void* dense_x = x;
    if (dense_bf16()) {
      thread_local std::vector<uint16_t> x_bf16;
      x_bf16.resize(static_cast<size_t>(tokens * in));
      convert_to_bf16(x, x_bf16.data(), tokens * in);
      dense_x = x_bf16.data();
    } else if (options.dtype == DType::bf16) {
      // bf16 semantics on oneDNN's f32 GEMM: the weights were rounded at pack time.
      thread_local std::vector<float> rounded;
      rounded.resize(static_cast<size_t>(tokens * in));
      for (size_t i = 0; i < rounded.size(); ++i)
        rounded[i] = sparse::from_bf16(sparse::to_bf16(x[i]));
      dense_x = rounded.data();
    }
    // oneDNN writes fp32; bf16 output is converted afterwards (not fused on this path).
    thread_local std::vector<float> fp32_out;
    float* y32 = static_cast<float*>(y);
    if (bf16_out) {
      fp32_out.resize(static_cast<size_t>(tokens * out));
      y32 = fp32_out.data();
    }
    dense_for(tokens)->run(dense_x, y32);
    if (residual)
      for (int64_t i = 0; i < tokens * out; ++i) y32[i] += residual[i];
    if (bf16_out) convert_to_bf16(y32, static_cast<uint16_t*>(y), tokens * out);
  }

  // Dense int8: oneDNN's s32 accumulators, then the same epilogue as the sparse kernels.
  // y: fp32, s8 when y_scale > 0, bf16 when bf16_out.
  void run_quantized(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                     bool bf16_out = false) const {
    if (nm && (q.form == QuantizedInput::Impl::Form::nm_s8 ||
               q.form == QuantizedInput::Impl::Form::nm_u8)) {
      nm->run(q, y, y_scale, residual, bf16_out);
      return;
    }
    if (decode && q.form == QuantizedInput::Impl::Form::decode_s16) {
      decode->run(q, y, y_scale, residual, bf16_out);
      return;
    }
    if (block) {
      block->run(q, y, y_scale, residual, bf16_out);
      return;
    }
    if (nm_table) {
      nm_table->run(q, y, y_scale, residual, bf16_out);
      return;
    }
    require(options.dtype == DType::int8, "forward: a QuantizedInput needs an int8 layer");
    require(q.form == QuantizedInput::Impl::Form::row_major && q.in == in,
            "forward: the QuantizedInput was not made by this layer's quantize_input");
    require(y != nullptr, "forward: y must not be null");
    thread_local std::vector<int32_t> acc;
    acc.resize(static_cast<size_t>(q.tokens * out));
    dense_for(q.tokens)->run(q.x.data(), acc.data());
    const jit::TileOutput output = y_scale > 0.0f ? jit::TileOutput::s8
                                   : bf16_out     ? jit::TileOutput::bf16
                                                  : jit::TileOutput::f32;
    const jit::RowEpilogueKey key{jit::Isa::reference, options.activation, residual != nullptr,
                                  output};
    const jit::RowEpilogue* kernel =
        row_epilogues[residual != nullptr][static_cast<int>(output)].get();
    const int64_t y_elem = output == jit::TileOutput::f32  ? 4
                           : output == jit::TileOutput::s8 ? 1
                                                           : 2;
    const int32_t* acc_rows = acc.data();
    parallel_ranges(*arena, q.tokens, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        jit::apply_row_epilogue(kernel, key, acc_rows + t * out, q.scales[t], w_scale.data(),
                                dense_bias.data(), residual ? residual + t * out : nullptr,
                                static_cast<uint8_t*>(y) + t * out * y_elem, out,
                                y_scale > 0.0f ? 1.0f / y_scale : 0.0f);
    });
  }
};

namespace {

void validate_pack(const float* weight, int64_t out, int64_t in, const float* bias,
                   const LinearOptions& o) {
  require(weight != nullptr, "SparseLinear::pack: weight must not be null");
  require(out > 0 && in > 0, "SparseLinear::pack: out and in must be positive, got out=" +
                                 std::to_string(out) + " in=" + std::to_string(in));
  // int8 kernels accumulate in int32: 127 * 127 * in must stay below 2^31.
  require(out <= (1 << 30) && in <= kMaxInFeatures,
          "SparseLinear::pack: out must be <= 2^30 and in <= " + std::to_string(kMaxInFeatures) +
              " (int32 accumulation), got out=" + std::to_string(out) +
              " in=" + std::to_string(in));
  require(o.dtype == DType::f32 || o.dtype == DType::bf16 || o.dtype == DType::int8 ||
              o.dtype == DType::f16,
          "SparseLinear::pack: unknown dtype value " + std::to_string(static_cast<int>(o.dtype)));
  check_device_request(o.device, o.dtype, "SparseLinear::pack");
  require(o.activation == Activation::none || o.activation == Activation::relu ||
              o.activation == Activation::gelu_tanh || o.activation == Activation::gelu_erf ||
              o.activation == Activation::silu,
          "SparseLinear::pack: unknown activation value " +
              std::to_string(static_cast<int>(o.activation)));
  require(o.pattern.kind == Pattern::Kind::automatic || o.pattern.kind == Pattern::Kind::dense ||
              o.pattern.kind == Pattern::Kind::block || o.pattern.kind == Pattern::Kind::n_m,
          "SparseLinear::pack: unknown pattern kind value " +
              std::to_string(static_cast<int>(o.pattern.kind)));
  for (int64_t i = 0; i < out * in; ++i)
    if (!std::isfinite(weight[i]))
      throw InvalidArgument("SparseLinear::pack: weight[" + std::to_string(i / in) + "][" +
                            std::to_string(i % in) + "] is not finite");
  if (bias)
    for (int64_t i = 0; i < out; ++i)
      require(std::isfinite(bias[i]),
              "SparseLinear::pack: bias[" + std::to_string(i) + "] is not finite");
  resolve_threads(o.threads);
  const Pattern& p = o.pattern;
  if (p.kind == Pattern::Kind::block)
    require(p.block.rows > 0 && p.block.cols > 0,
            "SparseLinear::pack: block shape must be positive");
  if (p.kind == Pattern::Kind::n_m)
    require(p.n > 0 && p.m > 0 && p.n <= p.m, "SparseLinear::pack: N:M needs 0 < N <= M");
}

// Dense int8 on oneDNN (m.w_s8 and m.w_scale set): the epilogue (scales, bias, activation,
// residual, output type) runs vectorized after oneDNN's s32 product, on the layer's threads.
void prepare_dense_int8(SparseLinear::Impl& m, const float* bias) {
  const jit::Isa isa = jit::best_int8_isa();
  for (int residual = 0; residual < 2; ++residual)
    for (jit::TileOutput output :
         {jit::TileOutput::f32, jit::TileOutput::s8, jit::TileOutput::bf16})
      if (isa != jit::Isa::reference)
        m.row_epilogues[residual][static_cast<int>(output)] =
            jit::row_epilogue({isa, m.options.activation, residual == 1, output});
  m.dense_bias = bias ? std::vector<float>(bias, bias + m.out) : std::vector<float>(m.out, 0.0f);
  m.arena = &arena_for(m.info.threads);
}

std::string percent(double fraction) {
  char text[16];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * fraction);
  return text;
}

std::string dense_reason(const SparseLinear::Impl& m) {
  if (m.options.pattern.kind == Pattern::Kind::dense) return "pattern dense requested";
  return "auto: only " + percent(m.info.block_sparsity) + " of 4x1 blocks are zero (< " +
         percent(kMinBlockSparsityForSparse) + ") and the weight is not 2:4: dense is faster";
}

// An explicitly requested RxC block pattern runs on the 4x1 kernels, which skip every all-zero
// 4x1 block: an R x C block with R a multiple of 4 is R/4 x C of them.
std::string block_reason(const SparseLinear::Impl& m) {
  const Pattern& p = m.options.pattern;
  if (p.block == BlockShape{4, 1}) return "pattern 4x1 requested";
  return "pattern " + p.to_string() + " requested; the 4x1 kernel runs it (" +
         percent(m.info.block_sparsity) + " of 4x1 blocks are zero" +
         (p.block.rows % 4 == 0 ? ")" : ": " + p.to_string() + " blocks do not stack into 4x1)");
}

// SPARQ_INT8_2OF4_PREFILL=table|dense (default dense): where int8 2:4 calls of more than 4 tokens
// run on AVX-512 VNNI. A measurement switch: the table kernel loses to oneDNN's GEMM on Zen 4.
bool int8_2of4_prefill_on_table() {
  const char* v = std::getenv("SPARQ_INT8_2OF4_PREFILL");
  if (v == nullptr || *v == 0 || std::string(v) == "dense") return false;
  if (std::string(v) == "table") return true;
  throw InvalidArgument(std::string("SPARQ_INT8_2OF4_PREFILL must be table or dense, got '") + v +
                        "'");
}

enum class FloatKernel { dense, block_4x1, n2_m4 };

// f32 and bf16 layers: the f32 4x1 or 2:4 kernel, or oneDNN's f32 matmul. On this path bf16
// means weights and activations rounded to bf16 with fp32 products and sums (sparq has no bf16
// instruction kernel yet), so results match the bf16 reference up to summation order.
void pack_float(SparseLinear::Impl& m, const float* weight, const float* bias, FloatKernel kind,
                const std::string& reason) {
  LinearInfo& info = m.info;
  const bool bf16 = m.options.dtype == DType::bf16;
  std::vector<float> rounded;
  if (bf16) {
    rounded.resize(static_cast<size_t>(m.out * m.in));
    for (size_t i = 0; i < rounded.size(); ++i)
      rounded[i] = sparse::from_bf16(sparse::to_bf16(weight[i]));
    weight = rounded.data();
  }
  const bool native_bf16 = bf16 && kind == FloatKernel::block_4x1 && jit::native_bf16_available();
  const std::string bf16_note =
      !bf16         ? ""
      : native_bf16 ? "; bf16 weights and activations on vdpbf16ps (AVX512_BF16)"
                    : "; bf16 runs as bf16-rounded weights and activations on fp32 FMAs";
  if (kind != FloatKernel::dense) {
    const jit::Isa isa = jit::best_float_isa();
    const auto layout =
        kind == FloatKernel::n2_m4 ? jit::F32Layout::n2_m4 : jit::F32Layout::block_4x1;
    // bf16 2:4 with AVX512_BF16: calls of more than 4 tokens on the 2:4 table kernel (1.3-1.45x
    // oneDNN's bf16 GEMM at 128 tokens on Zen 4; a call's last 1..32 tokens on 16- or 32-token
    // tiles), decode-sized ones on the 2:4 decode kernel below. Where only oneDNN has a bf16
    // GEMM (SPARQ_MAX_ISA below the kernel), longer calls dense on it: the fp32 2:4 kernel on
    // bf16 values runs 0.46-0.60x of it (Zen 5).
    const bool table_prefill = kind == FloatKernel::n2_m4 && bf16 && isa >= jit::Isa::avx512 &&
                               jit::native_bf16_available();
    const bool dense_prefill =
        !table_prefill && kind == FloatKernel::n2_m4 && m.dense_bf16() && isa >= jit::Isa::avx512;
    if (table_prefill) {
      m.nm_table.emplace(weight, bias, m.out, m.in, m.options.activation, m.options.threads);
      info.kernel = m.nm_table->kernel_name();
      info.packed_bytes = m.nm_table->weights().bytes();
    } else if (dense_prefill) {
      m.w_f32.assign(weight, weight + m.out * m.in);
      info.kernel = "onednn:bf16-dense";
      info.packed_bytes = static_cast<int64_t>((m.w_f32.size() + m.bias.size()) * sizeof(float));
    } else {
      m.f32_tiles.emplace(weight, bias, m.out, m.in, layout, m.options.activation, isa,
                          m.options.threads, bf16);
      info.kernel = m.f32_tiles->kernel_name();
      info.packed_bytes = m.f32_tiles->packed_bytes();
    }
    info.isa = jit::isa_name(isa);
    info.pattern = kind == FloatKernel::n2_m4                       ? "2:4"
                   : m.options.pattern.kind == Pattern::Kind::block ? m.options.pattern.to_string()
                                                                    : "4x1";
    info.reason =
        reason + (table_prefill ? "; calls of more than " + std::to_string(kF32DecodeTokens) +
                                      " tokens on the bf16 2:4 table kernel (vdpbf16ps on "
                                      "per-call tables of the kept activations)"
                  : dense_prefill ? "; longer calls dense on oneDNN's bf16 GEMM"
                                  : bf16_note);
    if (isa == jit::Isa::reference)
      info.reason += "; this CPU lacks AVX2/FMA: portable C++ kernel (slow)";
    // Decode-sized calls read every weight byte for little arithmetic. Weights whose zeros come
    // in 16x1 blocks get the decode kernel (rows in lanes; bf16 stored as bf16). Otherwise the
    // f32 kernels' 16-token tiles and 20-40 byte entries lose to oneDNN's dense GEMV unless the
    // weight is very sparse (measured: docs/sweep, tokens 1): under auto such layers keep the
    // dense weight too.
    const Pattern& p = m.options.pattern;
    const std::span<const float> all(weight, static_cast<size_t>(m.out * m.in));
    const double sparsity_16x1 =
        kind == FloatKernel::block_4x1 ? sparse::block_sparsity(all, m.out, m.in, {16, 1}) : 0.0;
    const bool decode_kernel =
        kind == FloatKernel::block_4x1 &&
        ((p.kind == Pattern::Kind::block && p.block.rows % 16 == 0 && p.block.cols == 1) ||
         (p.kind == Pattern::Kind::automatic && sparsity_16x1 >= kMinBlockSparsityForSparse));
    // 2:4 weights on AVX-512 get the 2:4 decode kernel (16 rows in lanes, 56 % of the dense fp32
    // bytes, 62.5 % of bf16): the tile kernel would spend 64 token lanes on one token.
    const bool nm_decode_kernel = kind == FloatKernel::n2_m4 && isa >= jit::Isa::avx512;
    const bool dense_for_decode =
        !decode_kernel && !nm_decode_kernel && p.kind == Pattern::Kind::automatic &&
        (kind == FloatKernel::n2_m4 || info.block_sparsity < kMinBlockSparsityForF32Decode);
    if (decode_kernel || nm_decode_kernel) {
      m.f32_decode.emplace(weight, bias, m.out, m.in, bf16, m.options.activation, isa,
                           m.options.threads, nm_decode_kernel);
      info.decode_kernel = m.f32_decode->kernel_name();
      info.decode_packed_bytes = m.f32_decode->weights().bytes();
      info.packed_bytes += info.decode_packed_bytes;
      info.reason += "; calls of <= " + std::to_string(kF32DecodeTokens) + " tokens run the " +
                     (nm_decode_kernel ? std::string("2:4 decode kernel")
                                       : "16x1 decode kernel (" + percent(sparsity_16x1) +
                                             " of 16x1 blocks are zero)");
      if (!dense_prefill) m.bias = {};
    } else if (dense_for_decode) {
      m.w_f32.assign(weight, weight + m.out * m.in);
      info.decode_kernel = m.dense_bf16() ? "onednn:bf16-dense" : "onednn:f32-dense";
      info.decode_packed_bytes =
          static_cast<int64_t>((m.w_f32.size() + m.bias.size()) * sizeof(float));
      info.packed_bytes += info.decode_packed_bytes;
      info.reason += "; calls of <= " + std::to_string(kF32DecodeTokens) +
                     " tokens run dense on oneDNN (faster there below " +
                     percent(kMinBlockSparsityForF32Decode) + " 4x1 block sparsity)";
    } else {
      m.bias = {};
    }
    return;
  }
  info.kernel = m.dense_bf16() ? "onednn:bf16-dense" : "onednn:f32-dense";
  info.isa = "onednn";
  info.pattern = "dense";
  m.w_f32.assign(weight, weight + m.out * m.in);
  info.packed_bytes = static_cast<int64_t>((m.w_f32.size() + m.bias.size()) * sizeof(float));
  info.reason = reason + (m.dense_bf16() ? "; bf16 on oneDNN's bf16 GEMM" : bf16_note);
}

}  // namespace

SparseLinear SparseLinear::pack(const float* weight, int64_t out, int64_t in, const float* bias,
                                const LinearOptions& options) {
  validate_pack(weight, out, in, bias, options);
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.out = out;
  m.in = in;
  m.options = options;
  if (options.device.kind == Device::Kind::cuda) {
    m.cuda = cuda_backend_for(options.device).pack(weight, out, in, bias, options);
    m.info = m.cuda->info();
    return SparseLinear(std::move(impl));
  }
  const std::span<const float> w(weight, static_cast<size_t>(out * in));
  LinearInfo& info = m.info;
  info.threads = resolve_threads(options.threads);
  info.sparsity = sparse::sparsity(w);
  info.block_sparsity = sparse::block_sparsity(w, out, in, {4, 1});
  const Pattern& p = options.pattern;
  const std::string pattern_text = p.to_string();

  if (p.kind == Pattern::Kind::n_m) {
    if (auto v = sparse::first_n_m_violation(w, out, in, p.n, p.m))
      throw InvalidArgument("SparseLinear::pack: pattern " + pattern_text +
                            " requested but the weight is not " + pattern_text + ": " +
                            v->describe(p.n, p.m));
    if (!(p.n == 2 && p.m == 4))
      throw NotSupported("SparseLinear::pack: " + pattern_text +
                         " kernels are not supported yet; the N:M kernels take 2:4 (a 1:4 "
                         "weight is 2:4 too)");
  }
  if (options.dtype == DType::int8 && p.kind == Pattern::Kind::n_m) {
    m.w_s8.resize(static_cast<size_t>(out * in));
    m.w_scale.resize(static_cast<size_t>(out));
    sparse::quantize_rows(weight, out, in, m.w_s8.data(), m.w_scale.data());
    const jit::Isa isa = jit::best_int8_isa();
    const bool avx2 = isa >= jit::Isa::avx2;
    m.nm.emplace(m.w_s8.data(), m.w_scale.data(), bias, out, in, options.activation, isa,
                 options.threads);
    info.decode_kernel = m.nm->kernel_name();
    info.isa = jit::isa_name(isa);
    info.pattern = "2:4";
    info.decode_packed_bytes = m.nm->packed_bytes();
    info.reason = "pattern 2:4 requested: calls of <= " + std::to_string(kNmMaxTokens) +
                  " tokens run the int8 2:4 kernel (62.5% of the dense weight bytes); ";
    if (isa == jit::Isa::avx512_vnni && int8_2of4_prefill_on_table()) {
      // Longer calls: the 2:4 table kernel (vpdpbusd on per-call tables of the kept activations),
      // on request only: its table lives in L2 and it runs 0.83-0.94x of oneDNN on Zen 4.
      m.nm_table.emplace(m.w_s8.data(), m.w_scale.data(), bias, out, in, options.activation,
                         options.threads);
      info.kernel = m.nm_table->kernel_name();
      info.packed_bytes = info.decode_packed_bytes + m.nm_table->weights().bytes();
      info.reason += "longer ones the 2:4 table kernel (75% of the dense weight bytes)";
      m.w_s8 = {};
      m.w_scale = {};
    } else if (onednn_int8_is_exact()) {
      // Longer calls: oneDNN's dense int8 GEMM. No sparse kernel here beats it on a 2:4 weight
      // (the 4x1 kernel skips almost nothing there: 0.45-0.6x of oneDNN, measured on Zen 5).
      prepare_dense_int8(m, bias);
      info.kernel = "onednn:int8-dense";
      info.packed_bytes = info.decode_packed_bytes + static_cast<int64_t>(m.w_s8.size());
      info.reason += "longer ones dense on oneDNN (no int8 2:4 kernel beats it for many tokens)";
    } else {
      // Without VNNI oneDNN's int8 GEMM saturates: longer calls on the exact 4x1 kernel.
      m.block.emplace(m.w_s8.data(), m.w_scale.data(), bias, out, in, options.activation, isa,
                      options.threads);
      info.kernel = m.block->kernel_name();
      info.packed_bytes = m.block->weights().bytes() + info.decode_packed_bytes;
      info.reason += "longer ones the 4x1 kernel (oneDNN's int8 GEMM is inexact without VNNI)";
      m.w_s8 = {};
      m.w_scale = {};
    }
    if (!avx2) info.reason += "; this CPU lacks AVX2: portable C++ kernels (slow)";
    return SparseLinear(std::move(impl));
  }
  if (bias) m.bias.assign(bias, bias + out);
  const bool wants_sparse =
      p.kind == Pattern::Kind::block ||
      (p.kind == Pattern::Kind::automatic && info.block_sparsity >= kMinBlockSparsityForSparse);
  if (options.dtype != DType::int8) {
    FloatKernel kind = FloatKernel::dense;
    std::string reason = dense_reason(m);
    if (p.kind == Pattern::Kind::n_m) {
      kind = FloatKernel::n2_m4;
      reason = "pattern 2:4 requested";
    } else if (p.kind == Pattern::Kind::block) {
      kind = FloatKernel::block_4x1;
      reason = block_reason(m);
    } else if (wants_sparse) {
      kind = FloatKernel::block_4x1;
      reason = "auto: " + percent(info.block_sparsity) +
               " of 4x1 blocks are zero (>= " + percent(kMinBlockSparsityForSparse) + ")";
    } else if (p.kind == Pattern::Kind::automatic && sparse::fits_n_m(w, out, in, 2, 4) &&
               info.sparsity >= kMinSparsityFor2of4) {
      kind = FloatKernel::n2_m4;
      reason = "auto: the weight is 2:4 (" + percent(info.sparsity) + " zeros)";
    }
    pack_float(m, weight, bias, kind, reason);
    return SparseLinear(std::move(impl));
  }
  const bool sparse_kernel = wants_sparse;
  if (options.dtype == DType::int8) {
    m.w_s8.resize(static_cast<size_t>(out * in));
    m.w_scale.resize(static_cast<size_t>(out));
    sparse::quantize_rows(weight, out, in, m.w_s8.data(), m.w_scale.data());
  }
  // oneDNN 2.6's int8 GEMM multiplies with vpmaddubsw on CPUs without VNNI, which saturates
  // 16-bit sums of two products: full-range int8 data gives wrong results. There, dense int8
  // layers run on sparq's exact block kernel with every column kept.
  const bool onednn_int8_exact = onednn_int8_is_exact();
  const bool exact_dense_on_sparq =
      options.dtype == DType::int8 && !sparse_kernel && !onednn_int8_exact;
  if (sparse_kernel || exact_dense_on_sparq) {
    const jit::Isa isa = jit::best_int8_isa();
    m.block.emplace(m.w_s8.data(), m.w_scale.data(), bias, out, in, options.activation, isa,
                    options.threads);
    info.kernel = m.block->kernel_name();
    info.isa = jit::isa_name(isa);
    info.pattern = !sparse_kernel ? "dense" : p.kind == Pattern::Kind::block ? pattern_text : "4x1";
    info.packed_bytes = m.block->weights().bytes();
    if (sparse_kernel) {
      info.reason = p.kind == Pattern::Kind::block
                        ? block_reason(m)
                        : "auto: " + percent(info.block_sparsity) +
                              " of 4x1 blocks are zero (>= " + percent(kMinBlockSparsityForSparse) +
                              ")";
    } else {
      info.reason = std::string(p.kind == Pattern::Kind::dense ? "pattern dense requested"
                                                               : "auto: too dense for sparsity") +
                    "; this CPU has no VNNI, where oneDNN's int8 GEMM saturates 16-bit "
                    "intermediate sums, so sparq's exact int8 kernel runs it (all-zero 4x1 blocks, "
                    "if any, are skipped)";
    }
    // Decode steps (<= 4 tokens) run the 16x1 decode kernel whatever the pattern: it streams
    // the weight once with rows in lanes, while the 4x1 tile kernel would spend 16 token lanes
    // on each. Measured (README, decode table): on a dense weight the decode kernel is 3.4x
    // oneDNN's int8 GEMV, the 4x1 kernel on an 80 % 4x1-sparse weight only 1.98x; all-zero
    // 16x1 blocks are skipped on top.
    const double sparsity_16x1 = sparse::block_sparsity(w, out, in, {16, 1});
    const bool decode = in <= sparse::kDecodeMaxIn;
    if (decode) {
      m.decode.emplace(m.w_s8.data(), m.w_scale.data(), bias, out, in, options.activation, isa,
                       options.threads);
      info.decode_kernel = m.decode->kernel_name();
      info.decode_packed_bytes = m.decode->weights().bytes();
      info.packed_bytes += info.decode_packed_bytes;
      info.reason += "; calls of <= " + std::to_string(sparse::kDecodeMaxTokens) +
                     " tokens run the 16x1 decode kernel (" + percent(sparsity_16x1) +
                     " of 16x1 blocks are zero)";
    }
    if (isa == jit::Isa::reference)
      info.reason += "; this CPU lacks AVX2: portable C++ kernel (slow)";
    m.w_s8 = {};
    m.w_scale = {};
    m.bias = {};
  } else {
    info.kernel = "onednn:int8-dense";
    info.isa = "onednn";
    prepare_dense_int8(m, bias);
    info.pattern = "dense";
    info.packed_bytes =
        static_cast<int64_t>(m.w_s8.size() + (m.w_scale.size() + m.bias.size()) * sizeof(float));
    info.reason = dense_reason(m);
  }
  return SparseLinear(std::move(impl));
}

const SparseLinear::Impl& SparseLinear::impl() const {
  if (!impl_) throw InvalidArgument("SparseLinear: this object was moved from");
  return *impl_;
}

namespace {
// The entry points that exist for CPU layers only.
const SparseLinear::Impl& require_cpu(const SparseLinear::Impl& m, const char* entry) {
  if (m.cuda)
    throw NotSupported(std::string(entry) + ": the layer was packed for " +
                       m.options.device.to_string() +
                       "; CUDA layers run forward (host fp32) or forward_device");
  return m;
}
}  // namespace

void SparseLinear::forward(const float* x, int64_t tokens, float* y, const float* residual) const {
  require(x != nullptr && y != nullptr, "forward: x and y must not be null");
  require(tokens > 0,
          [&] { return "forward: tokens must be positive, got " + std::to_string(tokens); });
  if (impl().cuda) {
    impl().cuda->forward_host(x, tokens, y, residual);
    return;
  }
  if (impl().options.dtype != DType::int8) {
    impl().run_f32(x, tokens, y, residual, false);
    return;
  }
  thread_local QuantizedInput scratch;
  impl().quantize(x, tokens, scratch.impl());
  impl().run_quantized(scratch.impl(), y, 0.0f, residual);
}

void SparseLinear::forward_bf16(const float* x, int64_t tokens, uint16_t* y,
                                const float* residual) const {
  require(x != nullptr && y != nullptr, "forward_bf16: x and y must not be null");
  require(tokens > 0,
          [&] { return "forward_bf16: tokens must be positive, got " + std::to_string(tokens); });
  require_cpu(impl(), "forward_bf16");
  if (impl().options.dtype != DType::int8) {
    impl().run_f32(x, tokens, y, residual, true);
    return;
  }
  thread_local QuantizedInput scratch;
  impl().quantize(x, tokens, scratch.impl());
  impl().run_quantized(scratch.impl(), y, 0.0f, residual, true);
}

void SparseLinear::forward_bf16(const QuantizedInput& q, uint16_t* y, const float* residual) const {
  require_cpu(impl(), "forward_bf16").run_quantized(q.impl(), y, 0.0f, residual, true);
}

void SparseLinear::quantize_input(const float* x, int64_t tokens, QuantizedInput& q) const {
  require_cpu(impl(), "quantize_input");
  if (impl().options.dtype != DType::int8)
    throw InvalidArgument("quantize_input: the layer's dtype is " +
                          std::string(to_string(impl().options.dtype)) + ", not int8");
  impl().quantize(x, tokens, q.impl());
}

void SparseLinear::forward(const QuantizedInput& q, float* y, const float* residual) const {
  require_cpu(impl(), "forward(QuantizedInput)").run_quantized(q.impl(), y, 0.0f, residual);
}

void SparseLinear::forward(const QuantizedInput& q, int8_t* y, float y_scale,
                           const float* residual) const {
  require(std::isfinite(y_scale) && y_scale > 0.0f && std::isfinite(1.0f / y_scale), [&] {
    return "forward: y_scale must be a positive finite number whose inverse is finite, "
           "got " +
           std::to_string(y_scale);
  });
  require_cpu(impl(), "forward(QuantizedInput)").run_quantized(q.impl(), y, y_scale, residual);
}

void SparseLinear::forward_device(const void* x, int64_t tokens, void* y, const void* residual,
                                  void* stream) const {
  if (!impl().cuda)
    throw InvalidArgument(
        "forward_device: the layer was packed for cpu; pack it with LinearOptions.device = "
        "Device::cuda() to run it on a GPU, or call forward");
  require(x != nullptr && y != nullptr, "forward_device: x and y must not be null");
  require(tokens > 0,
          [&] { return "forward_device: tokens must be positive, got " + std::to_string(tokens); });
  // The library kernels write y before the epilogue reads the residual.
  require(residual != y, "forward_device: residual must not be the output buffer y");
  impl().cuda->forward_device(x, tokens, y, residual, stream);
}

Device SparseLinear::device() const { return impl().options.device; }

namespace {
// "jit:int8-4x1:avx512_vnni" -> "int8-4x1", "onednn:int8-dense" -> "int8-dense",
// "cpp-avx2:int8-2:4" -> "int8-2:4": the text between the prefix and an ISA suffix.
std::string family_of(const std::string& kernel) {
  const size_t begin = kernel.find(':');
  if (begin == std::string::npos) return kernel;
  std::string rest = kernel.substr(begin + 1);
  const size_t last = rest.rfind(':');
  if (last != std::string::npos) {
    const std::string suffix = rest.substr(last + 1);
    for (jit::Isa isa :
         {jit::Isa::reference, jit::Isa::avx2, jit::Isa::avx512, jit::Isa::avx512_vnni})
      if (suffix == jit::isa_name(isa)) return rest.substr(0, last);
  }
  return rest;
}
}  // namespace

LinearInfo SparseLinear::info() const {
  LinearInfo info = impl().info;
  info.family = family_of(info.kernel);
  info.decode_family = info.decode_kernel.empty() ? "" : family_of(info.decode_kernel);
  info.dtype = impl().options.dtype;
  return info;
}
int64_t SparseLinear::out_features() const { return impl().out; }
int64_t SparseLinear::in_features() const { return impl().in; }

SparseLinear::SparseLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SparseLinear::SparseLinear(SparseLinear&&) noexcept = default;
SparseLinear& SparseLinear::operator=(SparseLinear&&) noexcept = default;
SparseLinear::~SparseLinear() = default;

}  // namespace sparq
