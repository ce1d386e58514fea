// Prints the ISA sparq dispatches to and the kernel of a packed int8 4x1 layer, runs that layer
// once against a naive loop, then prints "ok". The isa_cap_* CTests run it with SPARQ_MAX_ISA
// set (the cap is read once per process, so it cannot be changed inside a GoogleTest binary).
// On an exception it prints "error: <what>" to stderr and returns 1.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "sparq/sparq.hpp"

int main() {
  try {
    std::printf("isa: %s\n", sparq::cpu_isa_name());
    const int64_t out = 8, in = 16, tokens = 3;
    std::vector<float> w(static_cast<size_t>(out * in), 0.0f);
    std::vector<float> x(static_cast<size_t>(tokens * in));
    // 4x1 blocks: rows 0..3 keep even columns, rows 4..7 keep columns divisible by 3.
    for (int64_t r = 0; r < out; ++r)
      for (int64_t c = 0; c < in; ++c)
        if ((r < 4 && c % 2 == 0) || (r >= 4 && c % 3 == 0))
          w[static_cast<size_t>(r * in + c)] = static_cast<float>((r * 7 + c * 3) % 11 - 5) / 5.0f;
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 9) / 4.0f - 1.0f;
    sparq::LinearOptions options;
    options.pattern = sparq::Pattern::blocks(4, 1);
    options.threads = 1;
    const auto layer = sparq::SparseLinear::pack(w.data(), out, in, nullptr, options);
    std::printf("kernel: %s\n", layer.info().kernel.c_str());
    std::vector<float> y(static_cast<size_t>(tokens * out));
    layer.forward(x.data(), tokens, y.data());
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t o = 0; o < out; ++o) {
        float want = 0.0f;
        for (int64_t i = 0; i < in; ++i)
          want += x[static_cast<size_t>(t * in + i)] * w[static_cast<size_t>(o * in + i)];
        const float got = y[static_cast<size_t>(t * out + o)];
        if (!(std::fabs(got - want) <= 0.05f * (1.0f + std::fabs(want)))) {
          std::fprintf(stderr, "mismatch: y[%lld][%lld] = %g, want %g\n", static_cast<long long>(t),
                       static_cast<long long>(o), double{got}, double{want});
          return 2;
        }
      }
    std::printf("ok\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
