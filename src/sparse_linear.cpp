// The public SparseLinear: validates arguments, picks a kernel from the weight's structure, the
// dtype and the CPU, and forwards to it.
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include "gpu/backend.hpp"
#include "jit/cpu_features.hpp"
#include "sparq/sparq.hpp"
#include "sparse/bf16.hpp"
#include "sparse/checks.hpp"
#include "sparse/reference.hpp"
#include "sparse/stats.hpp"
#include "src/cuda_backend.hpp"
#include "src/kernel_registry.hpp"
#include "src/kernel_thresholds.hpp"
#include "src/linear_kernel.hpp"
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
  // The kernels of the layer's calls (src/kernel_registry.hpp): decode for calls of at most
  // kDecodeTokens tokens where it is not null, prefill for the others.
  std::shared_ptr<const LinearKernel> prefill, decode;
  std::unique_ptr<gpu::DeviceLinear> cuda;  // the layer on a GPU (LinearOptions.device cuda)

  const LinearKernel& kernel_for(int64_t tokens) const {
    return decode && tokens <= kDecodeTokens ? *decode : *prefill;
  }
  // x, or for a call LinearOptions::input_threshold applies to, a copy with the small entries
  // zeroed (every kernel then sees the same input; the sparse-input kernel skips the zeros).
  const float* thresholded(const float* x, int64_t tokens) const {
    if (options.input_threshold <= 0.0f || tokens > kDecodeTokens) return x;
    thread_local std::vector<float> kept;
    kept.resize(static_cast<size_t>(tokens * in));
    // One branch-free pass the compiler vectorizes: a branch per entry mispredicted on 40-50 %
    // zeroed inputs and made this copy ~4 % of a llama-1b decode step on the calling thread.
    const float threshold = options.input_threshold;
    float* const k = kept.data();
    for (int64_t i = 0; i < tokens * in; ++i) k[i] = std::fabs(x[i]) < threshold ? 0.0f : x[i];
    return k;
  }
  void quantize(const float* x, int64_t tokens, QuantizedInput::Impl& q) const {
    require(x != nullptr, "forward: x must not be null");
    require(tokens > 0,
            [&] { return "forward: tokens must be positive, got " + std::to_string(tokens); });
    kernel_for(tokens).quantize(thresholded(x, tokens), tokens, q);
  }
  // y: fp32, or bf16 when bf16_out.
  void run_f32(const float* x, int64_t tokens, void* y, const float* residual,
               bool bf16_out) const {
    kernel_for(tokens).run(thresholded(x, tokens), tokens, y, residual, bf16_out);
  }
  // int8: the kernel whose layout q is in (the prefill kernel reports a q made elsewhere).
  // y: fp32, s8 when y_scale > 0, bf16 when bf16_out.
  void run_quantized(const QuantizedInput::Impl& q, void* y, float y_scale, const float* residual,
                     bool bf16_out = false) const {
    require(options.dtype == DType::int8, "forward: a QuantizedInput needs an int8 layer");
    const LinearKernel& kernel = decode && decode->reads(q) ? *decode : *prefill;
    kernel.run(q, y, y_scale, residual, bf16_out);
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
  // The CUDA backend's epilogues add their operand; a gated unit's product is not fused there.
  if (o.device.kind == Device::Kind::cuda && o.operand != OperandOp::add)
    throw NotSupported(
        "SparseLinear::pack: operand multiply is not supported on CUDA layers (the CUDA "
        "backend's epilogue adds its operand); pack the layer for the CPU or use operand add");
  require(std::isfinite(o.input_threshold) && o.input_threshold >= 0.0f,
          "SparseLinear::pack: input_threshold must be a finite number >= 0 (0: off), got " +
              std::to_string(o.input_threshold));
  require(std::isfinite(o.expected_input_sparsity) && o.expected_input_sparsity >= 0.0f &&
              o.expected_input_sparsity <= 1.0f,
          "SparseLinear::pack: expected_input_sparsity must be in [0, 1], got " +
              std::to_string(o.expected_input_sparsity));
  if (o.device.kind == Device::Kind::cuda && o.input_threshold > 0.0f)
    throw NotSupported(
        "SparseLinear::pack: input_threshold (activation sparsity) is not supported on CUDA "
        "layers; pack the layer for the CPU or leave input_threshold at 0");
  check_device_request(o.device, o.dtype, "SparseLinear::pack");
  require(o.activation == Activation::none || o.activation == Activation::relu ||
              o.activation == Activation::gelu_tanh || o.activation == Activation::gelu_erf ||
              o.activation == Activation::silu,
          "SparseLinear::pack: unknown activation value " +
              std::to_string(static_cast<int>(o.activation)));
  require(o.operand == OperandOp::add || o.operand == OperandOp::multiply,
          "SparseLinear::pack: unknown operand op value " +
              std::to_string(static_cast<int>(o.operand)) + " (expected add or multiply)");
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
  const Pattern& p = options.pattern;
  if (p.kind == Pattern::Kind::n_m) {
    const std::string text = p.to_string();
    if (auto v = sparse::first_n_m_violation(w, out, in, p.n, p.m))
      throw InvalidArgument("SparseLinear::pack: pattern " + text +
                            " requested but the weight is not " + text + ": " +
                            v->describe(p.n, p.m));
    if (!(p.n == 2 && p.m == 4))
      throw NotSupported("SparseLinear::pack: " + text +
                         " kernels are not supported yet; the N:M kernels take 2:4 (a 1:4 "
                         "weight is 2:4 too)");
  }
  LayerDescription d;
  d.out = out;
  d.in = in;
  d.options = options;
  d.threads = resolve_threads(options.threads);
  d.bias = bias;
  d.sparsity = sparse::sparsity(w);
  d.block_sparsity = sparse::block_sparsity(w, out, in, {4, 1});
  d.sparsity_16x1 = sparse::block_sparsity(w, out, in, {16, 1});
  resolve_shape(d, w);  // (src/kernel_registry.hpp)
  // bf16 layers: every kernel reads the weight rounded to bf16.
  std::vector<float> rounded;
  if (d.bf16()) {
    rounded.resize(w.size());
    for (size_t i = 0; i < rounded.size(); ++i)
      rounded[i] = sparse::from_bf16(sparse::to_bf16(weight[i]));
    weight = rounded.data();
  }
  d.weight = weight;
  if (d.int8()) {
    d.w_s8.resize(w.size());
    d.w_scale.resize(static_cast<size_t>(out));
    sparse::quantize_rows(weight, out, in, d.w_s8.data(), d.w_scale.data());
  }
  KernelChoice choice = choose_kernels(d);
  m.prefill = std::move(choice.prefill);
  m.decode = std::move(choice.decode);

  LinearInfo& info = m.info;
  info.threads = d.threads;
  info.sparsity = d.sparsity;
  info.block_sparsity = d.block_sparsity;
  info.kernel = m.prefill->name();
  info.isa = m.prefill->isa();
  info.pattern = d.shape == WeightShape::two_of_four ? "2:4"
                 : d.shape == WeightShape::dense     ? "dense"
                 : p.kind == Pattern::Kind::block    ? p.to_string()
                                                     : "4x1";
  info.packed_bytes = m.prefill->packed_bytes();
  info.reason = d.shape_reason;
  if (!choice.prefill_reason.empty()) info.reason += "; " + choice.prefill_reason;
  if (m.decode) {
    info.decode_kernel = m.decode->name();
    info.decode_packed_bytes = m.decode->packed_bytes();
    info.packed_bytes += info.decode_packed_bytes;
    if (!choice.decode_reason.empty()) info.reason += "; " + choice.decode_reason;
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
