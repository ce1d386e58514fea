// Uses only the installed public headers: packs a small random weight pruned by hand to 4x1
// blocks, runs it, prints the kernel and checks every output against a naive loop; then builds a
// tiny random BERT encoder in memory and checks that its int8 sentence embeddings agree with the
// fp32 ones on a padded batch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <sparq/sparq.hpp>
#include <vector>

// A two-layer random encoder (hidden 32, 4 heads), run in fp32 and in int8 with 4x1 pruning.
bool encoder_agrees() {
  sparq::models::BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 64;
  c.max_position = 16;
  c.type_vocab_size = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = normal(rng);
    return v;
  };
  auto linear = [&](int64_t out, int64_t in) {
    return sparq::models::LinearWeights{out, in, random(out * in), random(out)};
  };
  auto norm = [&] {
    sparq::models::LayerNormWeights n{random(c.hidden_size), random(c.hidden_size)};
    for (float& g : n.gamma) g += 1.0f;
    return n;
  };
  sparq::models::BertWeights w;
  w.word_embeddings = random(c.vocab_size * c.hidden_size);
  w.position_embeddings = random(c.max_position * c.hidden_size);
  w.token_type_embeddings = random(c.type_vocab_size * c.hidden_size);
  w.embedding_norm = norm();
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const int64_t h = c.hidden_size, i = c.intermediate_size;
    w.layers.push_back({linear(h, h), linear(h, h), linear(h, h), linear(h, h), linear(i, h),
                        linear(h, i), norm(), norm()});
  }
  // Two sequences of 5 and 3 tokens, padded to 5.
  sparq::models::EncoderInput in;
  in.batch = 2;
  in.seq = 5;
  in.ids = {2, 11, 12, 13, 3, 2, 14, 3, 0, 0};
  in.lengths = {5, 3};
  const auto fp32 =
      sparq::models::BertEncoder::build(c, w, {sparq::DType::f32, sparq::Pattern::dense(), 2});
  const auto int8 = sparq::models::BertEncoder::build(
      c, w, {sparq::DType::int8, sparq::Pattern::parse("4x1"), 2});
  const auto a = fp32.embed(in, sparq::models::BertEncoder::Pooling::mean);
  const auto b = int8.embed(in, sparq::models::BertEncoder::Pooling::mean);
  for (int64_t s = 0; s < in.batch; ++s) {
    double dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < c.hidden_size; ++i) {
      const double x = a[static_cast<size_t>(s * c.hidden_size + i)];
      const double y = b[static_cast<size_t>(s * c.hidden_size + i)];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    const double cosine = dot / std::sqrt(na * nb);
    std::printf("encoder sequence %lld: int8 vs fp32 cosine %.4f\n", static_cast<long long>(s),
                cosine);
    if (!(cosine >= 0.98)) return false;
  }
  return true;
}

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
    if (!encoder_agrees()) {
      std::fprintf(stderr, "the int8 encoder disagrees with the fp32 one\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparq error: %s\n", e.what());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
