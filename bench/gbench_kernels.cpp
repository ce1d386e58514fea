// Google Benchmark suite: sparq's int8 4x1 kernel and oneDNN's dense int8 matmul on BERT-base FFN
// shapes (out x in x tokens), one thread. Run: build/bench/sparq-gbench
#include <benchmark/benchmark.h>

#include "bench/spmm_case.hpp"

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

}  // namespace

BENCHMARK(BM_SparseInt8_4x1)->Apply(bert_shapes);
BENCHMARK(BM_DenseInt8_OneDnn)
    ->Args({3072, 768, 128, 0})
    ->Args({768, 3072, 128, 0})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
