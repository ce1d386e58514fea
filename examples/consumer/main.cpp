// Uses only the installed public headers: packs a small random weight pruned by hand to 4x1
// blocks, runs it, prints the kernel and checks every output against a naive loop.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <sparq/sparq.hpp>
#include <vector>

int main() {
  constexpr int64_t kOut = 30, kIn = 64, kTokens = 9;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::bernoulli_distribution keep(0.25);

  // Prune by hand: each 4x1 block (4 consecutive rows of one column) is kept or zeroed whole.
  std::vector<float> w(static_cast<size_t>(kOut * kIn));
  for (int64_t group = 0; group < (kOut + 3) / 4; ++group)
    for (int64_t c = 0; c < kIn; ++c) {
      const bool kept = keep(rng);
      for (int64_t r = group * 4; r < std::min(kOut, group * 4 + 4); ++r)
        w[static_cast<size_t>(r * kIn + c)] = kept ? value(rng) : 0.0f;
    }
  std::vector<float> bias(kOut), x(static_cast<size_t>(kTokens * kIn));
  for (float& b : bias) b = value(rng);
  for (float& v : x) v = value(rng);

  try {
    sparq::LinearOptions options;
    options.dtype = sparq::DType::int8;
    options.pattern = sparq::Pattern::parse("4x1");
    options.activation = sparq::Activation::relu;
    const auto layer = sparq::SparseLinear::pack(w.data(), kOut, kIn, bias.data(), options);
    const sparq::LinearInfo info = layer.info();
    std::printf("sparq %s: kernel %s (%s), %.0f%% sparse\n", sparq::cpu_isa_name(),
                info.kernel.c_str(), info.reason.c_str(), 100.0 * info.sparsity);

    std::vector<float> y(static_cast<size_t>(kTokens * kOut));
    layer.forward(x.data(), kTokens, y.data());

    // int8 quantization of weights and activations: allow 10% relative error.
    for (int64_t t = 0; t < kTokens; ++t)
      for (int64_t o = 0; o < kOut; ++o) {
        float want = bias[static_cast<size_t>(o)];
        for (int64_t i = 0; i < kIn; ++i)
          want += x[static_cast<size_t>(t * kIn + i)] * w[static_cast<size_t>(o * kIn + i)];
        want = std::max(want, 0.0f);
        const float got = y[static_cast<size_t>(t * kOut + o)];
        if (!(std::fabs(got - want) <= 0.1f * (1.0f + std::fabs(want)))) {
          std::fprintf(stderr, "mismatch at token %lld, output %lld: got %g, want %g\n",
                       static_cast<long long>(t), static_cast<long long>(o), double{got},
                       double{want});
          return 1;
        }
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq error: %s\n", e.what());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
