#include "bench/attention_onednn.hpp"

#include <omp.h>

#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

namespace sparq::bench {

using dt = dnnl::memory::data_type;
using dims = dnnl::memory::dims;

struct OneDnnAttention::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::memory::desc q_md, kt_md, s_md, v_md, ctx_md;
  dnnl::matmul scores, context;
  dnnl::softmax_forward softmax;
  mutable std::vector<float> s;
  int threads = 1;
};

OneDnnAttention::OneDnnAttention(int64_t len, int64_t heads, int64_t d, int threads)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.threads = threads;
  const int64_t row = 3 * heads * d;
  // Views into the stacked rows: head h of token t at t * row + h * d (+ heads d for keys, + 2
  // heads d for values). K^T swaps the last two strides.
  m.q_md = dnnl::memory::desc({heads, len, d}, dt::f32, dims{d, row, 1});
  m.kt_md = dnnl::memory::desc({heads, d, len}, dt::f32, dims{d, 1, row});
  m.s_md = dnnl::memory::desc({heads, len, len}, dt::f32, dims{len * len, len, 1});
  m.v_md = dnnl::memory::desc({heads, len, d}, dt::f32, dims{d, row, 1});
  m.ctx_md = dnnl::memory::desc({heads, len, d}, dt::f32, dims{d, heads * d, 1});
  dnnl::primitive_attr scaled;
  scaled.set_output_scales(0, {1.0f / std::sqrt(static_cast<float>(d))});
  m.scores = dnnl::matmul(
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(m.q_md, m.kt_md, m.s_md), scaled, m.engine));
  m.softmax = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, m.s_md, 2), m.engine));
  m.context = dnnl::matmul(
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(m.s_md, m.v_md, m.ctx_md), m.engine));
  m.s.resize(static_cast<size_t>(heads * len * len));
}

OneDnnAttention::~OneDnnAttention() = default;

void OneDnnAttention::run(const float* qkv, float* ctx) const {
  const Impl& m = *impl_;
  omp_set_num_threads(m.threads);
  dnnl::stream stream(m.engine);
  const int64_t offset_k = m.q_md.dims()[0] * m.q_md.dims()[2];  // heads * d
  auto* base = const_cast<float*>(qkv);
  dnnl::memory q(m.q_md, m.engine, base), kt(m.kt_md, m.engine, base + offset_k),
      v(m.v_md, m.engine, base + 2 * offset_k), s(m.s_md, m.engine, m.s.data()),
      out(m.ctx_md, m.engine, ctx);
  m.scores.execute(stream, {{DNNL_ARG_SRC, q}, {DNNL_ARG_WEIGHTS, kt}, {DNNL_ARG_DST, s}});
  m.softmax.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_DST, s}});
  m.context.execute(stream, {{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, v}, {DNNL_ARG_DST, out}});
  stream.wait();
}

}  // namespace sparq::bench
