#include "src/dnnl_matmul.hpp"

#include <omp.h>

#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "sparq/error.hpp"

namespace sparq {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

bool onednn_has_bf16() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bits = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bits) == bits;
}

bool onednn_int8_is_exact() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  auto has = [&](dnnl::cpu_isa level) {
    const auto bits = static_cast<unsigned>(level);
    return (isa & bits) == bits;
  };
  return has(dnnl::cpu_isa::avx512_core_vnni) || has(dnnl::cpu_isa::avx2_vnni);
}

bool onednn_runs_amx(DType dtype) {
  if (dtype == DType::f32) return false;
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bits = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_amx);
  return (isa & bits) == bits;
}

namespace {

// Held while sparq creates oneDNN primitives and reorder primitives (not while it runs them).
// oneDNN's creation is thread-safe, but its primitive cache publishes entries through
// synchronization that ThreadSanitizer cannot see in Debian's uninstrumented build: two threads
// packing the same layer shape reported a race inside libdnnl (scripts/sanitize.sh --thread).
// Creation is rare (once per layer and token count), so taking it one at a time costs nothing
// measurable and keeps the concurrency tests free of suppressions.
std::mutex& creation_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

struct DnnlSharedWeights {
  // The engine the weights were made on, kept alive with them: a memory object only points to its
  // engine, and the primitive that made both may be evicted before the last one sharing them.
  dnnl::engine engine;
  dnnl::memory weights;
};

struct DnnlMatmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  Kind kind;
  int64_t tokens, out, in;
  int threads;
  dnnl::matmul prim;
  dnnl::memory::desc src_md, dst_md, scratchpad_md;
  dnnl::memory weights, bias;
  std::vector<float> b_f32;
  bool owns_weights = true;
  std::string impl_name;
};

DnnlMatmul::DnnlMatmul(Kind kind, int64_t tokens, int64_t out, int64_t in, const void* w,
                       const float* w_scale, const float* bias, Activation activation, int threads,
                       std::shared_ptr<DnnlSharedWeights>* share)
    : impl_(std::make_unique<Impl>()) {
  const bool shared = share != nullptr && *share != nullptr;
  if ((!w && !shared) || tokens <= 0 || out <= 0 || in <= 0 ||
      (kind != Kind::f32 && kind != Kind::bf16 && kind != Kind::s8s8_s32 &&
       kind != Kind::u8s8_s32 && !w_scale))
    throw InvalidArgument("DnnlMatmul: null weight/scales or non-positive shape");
  Impl& m = *impl_;
  // A layer's later primitives live on the engine of its shared weights.
  if (shared) m.engine = (*share)->engine;
  m.kind = kind;
  m.tokens = tokens;
  m.out = out;
  m.in = in;
  m.threads = threads;
  const bool floating = kind == Kind::f32 || kind == Kind::bf16;
  const dt src_dt = kind == Kind::f32                                  ? dt::f32
                    : kind == Kind::bf16                               ? dt::bf16
                    : kind == Kind::u8s8_f32 || kind == Kind::u8s8_s32 ? dt::u8
                                                                       : dt::s8;
  const dt w_dt = kind == Kind::f32 ? dt::f32 : kind == Kind::bf16 ? dt::bf16 : dt::s8;
  m.src_md = dnnl::memory::desc({tokens, in}, src_dt, tag::ab);
  // Weights given as [out x in] row-major = a K x N matrix in "ba" order.
  // The user's weights: fp32 for the floating kinds (reordered into bf16 by oneDNN for bf16).
  const dnnl::memory::desc w_md({in, out}, floating ? dt::f32 : dt::s8, tag::ba);
  const dnnl::memory::desc w_any({in, out}, w_dt, tag::any);
  const bool s32_out = kind == Kind::s8s8_s32 || kind == Kind::u8s8_s32;
  m.dst_md = dnnl::memory::desc({tokens, out}, s32_out ? dt::s32 : dt::f32, tag::ab);
  const dnnl::memory::desc b_md({1, out}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  if (s32_out) {
    bias = nullptr;
    activation = Activation::none;
  }
  // A channel with weight scale 0 has an all-zero weight: scale 1 gives the same (zero) product
  // and lets the bias through unchanged.
  std::vector<float> scales;
  if (kind == Kind::s8s8_f32 || kind == Kind::u8s8_f32) {
    for (int64_t o = 0; o < out; ++o) scales.push_back(w_scale[o] == 0.0f ? 1.0f : w_scale[o]);
    attr.set_output_scales(1 << 1, scales);
  }
  if (activation == Activation::relu)
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  else if (activation == Activation::gelu_tanh)
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_tanh, 0.0f, 0.0f);
  else if (activation == Activation::gelu_erf)
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
  else if (activation == Activation::silu)
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
  attr.set_post_ops(ops);
  // A scratchpad per call (from the calling thread) makes concurrent runs of one primitive safe.
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  // oneDNN plans a primitive's parallel split for the OpenMP thread count current when it is
  // created (and this per-thread setting is whatever the last run() on this thread left): a
  // 2-thread layer built after a 1-thread run would run its 2 threads on a 1-thread plan.
  omp_set_num_threads(threads);
  auto desc = bias ? dnnl::matmul::desc(m.src_md, w_any, b_md, m.dst_md)
                   : dnnl::matmul::desc(m.src_md, w_any, m.dst_md);
  std::unique_lock creating(creation_mutex());
  dnnl::matmul::primitive_desc pd(desc, attr, m.engine);
  // The layer's shared weights, where the implementation oneDNN picks for this token count takes
  // their layout (asked for explicitly when it would choose another one by itself).
  if (shared) {
    const dnnl::memory::desc shared_md = (*share)->weights.get_desc();
    bool fits = pd.weights_desc() == shared_md;
    if (!fits) {
      try {
        auto fixed = bias ? dnnl::matmul::desc(m.src_md, shared_md, b_md, m.dst_md)
                          : dnnl::matmul::desc(m.src_md, shared_md, m.dst_md);
        dnnl::matmul::primitive_desc pd_fixed(fixed, attr, m.engine);
        if (std::string(pd_fixed.impl_info_str()) == pd.impl_info_str()) {
          pd = pd_fixed;
          fits = true;
        }
      } catch (const dnnl::error&) {
        // No implementation takes that layout for this shape: the primitive keeps its own copy.
      }
    }
    if (fits) {
      m.weights = (*share)->weights;
      m.owns_weights = false;
    }
  }
  m.impl_name = pd.impl_info_str();
  m.prim = dnnl::matmul(pd);
  m.scratchpad_md = pd.scratchpad_desc();
  if (m.owns_weights) {
    // Reorder the weights once into the layout the primitive wants: from the caller's plain
    // weight (only read: the reorder never writes its source), or, where the caller has released
    // it, from the layer's shared weights.
    dnnl::memory source =
        shared && !w ? (*share)->weights : dnnl::memory(w_md, m.engine, const_cast<void*>(w));
    m.weights = dnnl::memory(pd.weights_desc(), m.engine);
    dnnl::reorder reorder;
    try {
      reorder = dnnl::reorder(source, m.weights);
    } catch (const dnnl::error&) {
      throw NotSupported(
          "DnnlMatmul: oneDNN has no reorder from the layer's shared weights into "
          "the layout its implementation for " +
          std::to_string(tokens) + " tokens needs");
    }
    creating.unlock();  // creation is serialized, the reorder's execution need not be
    dnnl::stream s(m.engine);
    reorder.execute(s, source, m.weights);
    s.wait();
    if (share != nullptr && *share == nullptr)
      *share = std::make_shared<DnnlSharedWeights>(DnnlSharedWeights{m.engine, m.weights});
  }
  if (bias) {
    m.b_f32.assign(bias, bias + out);
    // oneDNN 2.6 scales int8 results after adding the bias: dst = scale * (acc + bias).
    if (!scales.empty())
      for (int64_t o = 0; o < out; ++o) m.b_f32[o] = bias[o] / scales[o];
    m.bias = dnnl::memory(b_md, m.engine, m.b_f32.data());
  }
}

DnnlMatmul::~DnnlMatmul() = default;
DnnlMatmul::DnnlMatmul(DnnlMatmul&&) noexcept = default;

void DnnlMatmul::run(const void* x, void* y) const {
  const Impl& m = *impl_;
  dnnl::stream s(m.engine);
  dnnl::memory src(m.src_md, m.engine, const_cast<void*>(x));
  dnnl::memory dst(m.dst_md, m.engine, y);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, m.weights}, {DNNL_ARG_DST, dst}};
  if (m.bias) args[DNNL_ARG_BIAS] = m.bias;
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < m.scratchpad_md.get_size()) scratch.resize(m.scratchpad_md.get_size());
  args[DNNL_ARG_SCRATCHPAD] = dnnl::memory(m.scratchpad_md, m.engine, scratch.data());
  // oneDNN's Debian build threads with OpenMP; the count is a per-calling-thread setting.
  omp_set_num_threads(m.threads);
  m.prim.execute(s, args);
  s.wait();
}

bool read_back_weights(const DnnlSharedWeights& weights, bool floating, int64_t out, int64_t in,
                       void* plain) {
  // On the weights' own engine: a stream of another engine cannot run the reorder.
  dnnl::memory src = weights.weights;
  const dnnl::engine& engine = weights.engine;
  const dnnl::memory::desc plain_md({in, out}, floating ? dt::f32 : dt::s8, tag::ba);
  dnnl::memory dst(plain_md, engine, plain);
  dnnl::reorder reorder;
  try {
    const std::lock_guard creating(creation_mutex());
    reorder = dnnl::reorder(src, dst);
  } catch (const dnnl::error&) {
    return false;
  }
  dnnl::stream s(engine);
  reorder.execute(s, src, dst);
  s.wait();
  return true;
}

const char* DnnlMatmul::implementation() const { return impl_->impl_name.c_str(); }
bool DnnlMatmul::owns_weights() const { return impl_->owns_weights; }
int64_t DnnlMatmul::weight_bytes() const {
  return static_cast<int64_t>(impl_->weights.get_desc().get_size());
}

}  // namespace sparq
