// Google Benchmark suite, one thread: sparq's int8 4x1 kernel and oneDNN's dense int8 matmul on
// BERT-base FFN shapes (out x in x tokens); one layer's self-attention (12 heads of 64) on
// sparq's kernel and on oneDNN primitives, with the largest difference between the two outputs
// reported; the activation quantizer and the decoder's element-wise ops. Run:
// build/bench/sparq-gbench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "bench/attention_onednn.hpp"
#include "bench/spmm_case.hpp"
#include "jit/cpu_features.hpp"
#include "models/attention.hpp"
#include "models/llama_ops.hpp"
#include "src/activation_quant.hpp"

namespace {

sparq::bench::SpmmSpec spec_of(const benchmark::State& state) {
  sparq::bench::SpmmSpec s;
  s.out = state.range(0);
  s.in = state.range(1);
  s.tokens = state.range(2);
  s.sparsity = static_cast<double>(state.range(3)) / 100.0;
  s.threads = 1;
  return s;
}

void set_counters(benchmark::State& state, const sparq::bench::SpmmSpec& s) {
  state.counters["dense_equiv_GOPS"] =
      benchmark::Counter(2.0 * double(s.tokens * s.out * s.in) * double(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_SparseInt8_4x1(benchmark::State& state) {
  const auto s = spec_of(state);
  sparq::bench::SpmmCase c(s);
  for (auto _ : state) c.run_sparse();
  set_counters(state, s);
  state.SetLabel(c.info().kernel);
}

void BM_DenseInt8_OneDnn(benchmark::State& state) {
  const auto s = spec_of(state);
  sparq::bench::SpmmCase c(s);
  for (auto _ : state) c.run_dense();
  set_counters(state, s);
  state.SetLabel("onednn:" + c.dense_implementation());
}

void bert_shapes(benchmark::internal::Benchmark* b) {
  for (auto [out, in] : {std::pair{3072, 768}, std::pair{768, 3072}})
    for (int sparsity : {70, 80, 90}) b->Args({out, in, 128, sparsity});
  b->Unit(benchmark::kMicrosecond);
}

constexpr int64_t kHeads = 12, kHeadDim = 64;

std::vector<float> random_qkv(int64_t len) {
  std::vector<float> qkv(static_cast<size_t>(len * 3 * kHeads * kHeadDim));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& x : qkv) x = normal(rng);
  return qkv;
}

using AttentionHead = void (*)(const float*, const float*, const float*, int64_t, int64_t, int64_t,
                               float*, int64_t, std::vector<float>&);

void sparq_attention(const std::vector<float>& qkv, int64_t len, float* ctx,
                     AttentionHead head_fn = sparq::models::attention_head) {
  static thread_local std::vector<float> scratch;
  const int64_t h = kHeads * kHeadDim;
  for (int64_t head = 0; head < kHeads; ++head) {
    const float* q = qkv.data() + head * kHeadDim;
    head_fn(q, q + h, q + 2 * h, len, kHeadDim, 3 * h, ctx + head * kHeadDim, h, scratch);
  }
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, double(std::fabs(a[i] - b[i])));
  return diff;
}

void attention_counters(benchmark::State& state, int64_t len) {
  state.counters["GFLOPS"] =
      benchmark::Counter(4.0 * double(kHeads * len * len * kHeadDim) * double(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

void BM_Attention_Sparq(benchmark::State& state) {
  const int64_t len = state.range(0);
  const auto qkv = random_qkv(len);
  std::vector<float> ctx(static_cast<size_t>(len * kHeads * kHeadDim));
  for (auto _ : state) sparq_attention(qkv, len, ctx.data());
  attention_counters(state, len);
}

// The bf16 variant, with its largest difference from the fp32 kernel. Second argument 0: what
// attention_head_bf16 runs here (AMX tiles, vdpbf16ps on AVX512_BF16, the portable twin
// elsewhere, much slower); 1: the vdpbf16ps kernel (also where AMX would run).
void BM_Attention_SparqBf16(benchmark::State& state) {
  const int64_t len = state.range(0);
  const bool vdpbf16ps = state.range(1) == 1;
  if (vdpbf16ps && !sparq::models::bf16_attention_runs_natively(kHeadDim)) {
    state.SkipWithError("no AVX512_BF16 here");
    return;
  }
  const AttentionHead head_fn = vdpbf16ps ? sparq::models::detail::attention_head_bf16_avx512
                                          : sparq::models::attention_head_bf16;
  const auto qkv = random_qkv(len);
  std::vector<float> ctx(static_cast<size_t>(len * kHeads * kHeadDim)), want(ctx.size());
  for (auto _ : state) sparq_attention(qkv, len, ctx.data(), head_fn);
  attention_counters(state, len);
  sparq_attention(qkv, len, want.data());
  state.counters["max_diff_vs_fp32"] = max_abs_diff(ctx, want);
  state.SetLabel(
      vdpbf16ps || !sparq::models::bf16_attention_runs_on_amx(kHeadDim)
          ? (sparq::models::bf16_attention_runs_natively(kHeadDim) ? "avx512_bf16" : "portable")
          : "amx_bf16");
}

void BM_Attention_OneDnn(benchmark::State& state) {
  const int64_t len = state.range(0);
  const auto qkv = random_qkv(len);
  std::vector<float> ctx(static_cast<size_t>(len * kHeads * kHeadDim)), want(ctx.size());
  const sparq::bench::OneDnnAttention attention(len, kHeads, kHeadDim, 1);
  for (auto _ : state) attention.run(qkv.data(), ctx.data());
  attention_counters(state, len);
  sparq_attention(qkv, len, want.data());
  state.counters["max_diff_vs_sparq"] = max_abs_diff(ctx, want);
}

// The decoder's element-wise ops on llama-1b's sizes (one decode token: RMSNorm of 2048, SwiGLU
// of 5632), each ISA variant this CPU runs.
void BM_RmsNorm(benchmark::State& state) {
  const int64_t width = 2048;
  const auto x = random_qkv(1);  // 2304 values
  std::vector<float> w(static_cast<size_t>(width), 1.1f), y(static_cast<size_t>(width));
  const bool avx512 = state.range(0) == 512;
  if (!sparq::jit::isa_available(avx512 ? sparq::jit::Isa::avx512 : sparq::jit::Isa::avx2)) {
    state.SkipWithError("this CPU lacks the ISA");
    return;
  }
  for (auto _ : state) {
    (avx512
         ? sparq::models::detail::rms_norm_rows_avx512
         : sparq::models::detail::rms_norm_rows_avx2)(x.data(), 1, width, w.data(), 1e-5, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(avx512 ? "avx512" : "avx2");
}

// Dynamic int8 quantization of 128 tokens into the AVX-512 VNNI kernels' layout (every int8 4x1
// layer's input: BERT-base's 768- and 3072-wide ones).
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t tokens = 128, in = state.range(0);
  if (!sparq::jit::isa_available(sparq::jit::Isa::avx512)) {
    state.SkipWithError("this CPU lacks AVX-512");
    return;
  }
  std::vector<float> x(static_cast<size_t>(tokens * in));
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  const auto layout = sparq::sparse::Int8Layout::quads_u8;
  std::vector<uint8_t> xq(static_cast<size_t>(sparq::activation_bytes(layout, tokens, in)));
  std::vector<float> scales(static_cast<size_t>(sparq::activation_scale_count(tokens)));
  for (auto _ : state) {
    sparq::detail::quantize_activations_avx512(x.data(), tokens, in, xq.data(), scales.data());
    benchmark::DoNotOptimize(xq.data());
  }
  state.counters["values_per_ns"] = benchmark::Counter(
      double(tokens * in) * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_QuantizeActivations)->Arg(768)->Arg(3072)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RmsNorm)->Arg(2)->Arg(512)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Attention_Sparq)->Arg(128)->Arg(384)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Attention_SparqBf16)
    ->Args({128, 0})
    ->Args({384, 0})
    ->Args({128, 1})
    ->Args({384, 1})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Attention_OneDnn)->Arg(128)->Arg(384)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_SparseInt8_4x1)->Apply(bert_shapes);
BENCHMARK(BM_DenseInt8_OneDnn)
    ->Args({3072, 768, 128, 0})
    ->Args({768, 3072, 128, 0})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
