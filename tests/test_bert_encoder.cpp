// The BERT encoder against a plain double-precision reference of the same math on the same
// weights: dense fp32 and sparse f32 to 1e-4, int8 sparse by the cosine similarity of sentence
// embeddings; padding, masks, token types, DistilBERT, bad inputs and concurrent callers.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <thread>

#include "jit/cpu_features.hpp"
#include "jit/cpu_tuning.hpp"
#include "models/attention.hpp"
#include "models/layer_norm.hpp"
#include "small_bert.hpp"
#include "sparq/error.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparse/bf16.hpp"
#include "sparse/prune.hpp"
#include "sparse/reference.hpp"
#include "test_util.hpp"

namespace sparq::models {
namespace {

BertConfig small_config(BertConfig::Arch arch = BertConfig::Arch::bert) {
  return test::small_bert_config(arch);
}

// Random weights; linear layers (+-0.3) pruned to `sparsity` in 4x1 blocks (0: dense).
BertWeights random_weights(const BertConfig& c, double sparsity, uint32_t seed) {
  test::PruneFn prune;
  if (sparsity > 0)
    prune = [sparsity](const std::vector<float>& w, int64_t out, int64_t in) {
      return sparse::prune(w, out, in, Pattern::blocks(4, 1), sparsity);
    };
  return test::random_bert_weights(
      c, seed, [](int64_t) { return 0.3f; }, prune);
}

// The plain reference, in double precision.
std::vector<double> reference(const BertConfig& c, const BertWeights& w, const EncoderInput& in) {
  const int64_t h = c.hidden_size, d = c.head_dim(), tokens = in.batch * in.seq;
  auto norm = [&](std::vector<double>& x, const LayerNormWeights& n) {
    for (int64_t t = 0; t < tokens; ++t) {
      double mean = 0, var = 0;
      for (int64_t i = 0; i < h; ++i) mean += x[t * h + i];
      mean /= static_cast<double>(h);
      for (int64_t i = 0; i < h; ++i) var += (x[t * h + i] - mean) * (x[t * h + i] - mean);
      var /= static_cast<double>(h);
      for (int64_t i = 0; i < h; ++i)
        x[t * h + i] =
            (x[t * h + i] - mean) / std::sqrt(var + c.layer_norm_eps) * n.gamma[i] + n.beta[i];
    }
  };
  auto linear = [&](const std::vector<double>& x, const LinearWeights& l, bool act) {
    std::vector<double> y(static_cast<size_t>(tokens * l.out));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t o = 0; o < l.out; ++o) {
        double s = l.bias[o];
        for (int64_t i = 0; i < l.in; ++i) s += x[t * l.in + i] * l.weight[o * l.in + i];
        y[t * l.out + o] = act ? 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0))) : s;
      }
    return y;
  };
  std::vector<double> x(static_cast<size_t>(tokens * h));
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < h; ++i) {
      const int64_t type = in.token_types.empty() ? 0 : in.token_types[t];
      x[t * h + i] =
          w.word_embeddings[in.ids[t] * h + i] + w.position_embeddings[(t % in.seq) * h + i] +
          (w.token_type_embeddings.empty() ? 0.0 : w.token_type_embeddings[type * h + i]);
    }
  norm(x, w.embedding_norm);
  for (const auto& l : w.layers) {
    const auto q = linear(x, l.query, false), k = linear(x, l.key, false),
               v = linear(x, l.value, false);
    std::vector<double> ctx(x.size(), 0.0);
    for (int64_t b = 0; b < in.batch; ++b)
      for (int64_t head = 0; head < c.num_heads; ++head)
        for (int64_t i = 0; i < in.lengths[b]; ++i) {
          std::vector<double> p(static_cast<size_t>(in.lengths[b]));
          double m = -1e300, sum = 0;
          for (int64_t j = 0; j < in.lengths[b]; ++j) {
            double s = 0;
            for (int64_t e = 0; e < d; ++e)
              s += q[(b * in.seq + i) * h + head * d + e] * k[(b * in.seq + j) * h + head * d + e];
            p[j] = s / std::sqrt(static_cast<double>(d));
            m = std::max(m, p[j]);
          }
          for (auto& s : p) sum += (s = std::exp(s - m));
          for (int64_t e = 0; e < d; ++e) {
            double acc = 0;
            for (int64_t j = 0; j < in.lengths[b]; ++j)
              acc += p[j] / sum * v[(b * in.seq + j) * h + head * d + e];
            ctx[(b * in.seq + i) * h + head * d + e] = acc;
          }
        }
    auto x1 = linear(ctx, l.attention_out, false);
    for (size_t i = 0; i < x1.size(); ++i) x1[i] += x[i];
    norm(x1, l.attention_norm);
    const auto inner = linear(x1, l.intermediate, true);
    x = linear(inner, l.output, false);
    for (size_t i = 0; i < x.size(); ++i) x[i] += x1[i];
    norm(x, l.output_norm);
  }
  for (int64_t b = 0; b < in.batch; ++b)
    for (int64_t t = in.lengths[b]; t < in.seq; ++t)
      for (int64_t i = 0; i < h; ++i) x[(b * in.seq + t) * h + i] = 0.0;
  return x;
}

EncoderInput batch_input(const BertConfig& c) {
  EncoderInput in;
  in.batch = 3;
  in.seq = 12;
  in.lengths = {7, 12, 1};
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(c.vocab_size - 1));
  for (int64_t i = 0; i < in.batch * in.seq; ++i) in.ids.push_back(id(rng));
  if (c.type_vocab_size)
    for (int64_t i = 0; i < in.batch * in.seq; ++i) in.token_types.push_back((i % in.seq) > 4);
  return in;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

TEST(BertEncoder, DenseAndSparseFp32MatchTheReference) {
  for (auto arch : {BertConfig::Arch::bert, BertConfig::Arch::distilbert})
    for (double sparsity : {0.0, 0.8}) {
      SCOPED_TRACE(testing::Message() << (arch == BertConfig::Arch::bert ? "bert" : "distilbert")
                                      << " sparsity=" << sparsity);
      const auto c = small_config(arch);
      const auto w = random_weights(c, sparsity, 10);
      const auto in = batch_input(c);
      EncoderOptions o;
      o.dtype = DType::f32;
      o.pattern = sparsity > 0 ? Pattern::blocks(4, 1) : Pattern::dense();
      o.threads = 2;
      const auto enc = BertEncoder::build(c, w, o);
      const auto got = enc.forward(in);
      const auto want = reference(c, w, in);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_LE(max_abs_diff(got, want), 1e-4);
      for (const auto& [kind, info] : enc.kernels())
        EXPECT_EQ(info.pattern, sparsity > 0 ? "4x1" : "dense") << kind;
    }
}

TEST(BertEncoder, Int8SparseEmbeddingsAgreeWithFp32) {
  const auto c = small_config();
  const auto w = random_weights(c, 0.8, 20);
  const auto in = batch_input(c);
  EncoderOptions f32, i8;
  f32.dtype = DType::f32;
  f32.pattern = Pattern::blocks(4, 1);
  i8.dtype = DType::int8;
  i8.pattern = Pattern::blocks(4, 1);
  for (auto pooling : {BertEncoder::Pooling::mean, BertEncoder::Pooling::cls}) {
    const auto a = BertEncoder::build(c, w, f32).embed(in, pooling);
    const auto b = BertEncoder::build(c, w, i8).embed(in, pooling);
    for (int64_t s = 0; s < in.batch; ++s)
      EXPECT_GE(test::cosine(&a[s * c.hidden_size], &b[s * c.hidden_size], c.hidden_size), 0.99)
          << "sequence " << s;
  }
}

TEST(BertEncoder, AttentionPrecisionIsChosenAndBf16StaysClose) {
  const auto c = small_config();
  const auto w = random_weights(c, 0.0, 21);
  const auto in = batch_input(c);
  EncoderOptions o;
  o.dtype = DType::f32;
  o.pattern = Pattern::dense();
  // automatic: fp32 models keep fp32 attention; int8 and bf16 models take bf16 where it runs at
  // full rate (not on Intel: CpuTuning::bf16_attention_products).
  EXPECT_EQ(BertEncoder::build(c, w, o).attention_kernel().substr(0, 3), "f32");
  const bool native = bf16_attention_runs_natively(c.head_dim());
  const bool automatic_bf16 = native && (bf16_attention_runs_on_amx(c.head_dim()) ||
                                         jit::cpu_tuning().bf16_attention_products);
  for (DType dtype : {DType::int8, DType::bf16}) {
    EncoderOptions q = o;
    q.dtype = dtype;
    EXPECT_EQ(BertEncoder::build(c, w, q).attention_kernel().substr(0, 4),
              automatic_bf16 ? "bf16" : "f32 ")
        << to_string(dtype);
  }
  o.attention = AttentionPrecision::bf16;
  if (!native) {
    EXPECT_THROW(BertEncoder::build(c, w, o), NotSupported);
    GTEST_SKIP() << "no AVX512_BF16 here: the bf16 attention's accuracy is not checked";
  }
  const auto enc = BertEncoder::build(c, w, o);
  EXPECT_EQ(enc.attention_kernel(), bf16_attention_runs_on_amx(c.head_dim())
                                        ? "bf16 (amx_bf16 tiles)"
                                        : "bf16 (vdpbf16ps, avx512_bf16)");
  // fp32 linear layers, bf16 attention products, against the double reference.
  const auto got = enc.forward(in);
  const auto want = reference(c, w, in);
  ASSERT_EQ(got.size(), want.size());
  const double diff = max_abs_diff(got, want);
  EXPECT_LE(diff, 3e-2);
  EXPECT_GT(diff, 1e-6);  // bf16 rounding did happen: it is not the fp32 path
}

TEST(BertEncoder, Bf16AttentionRefusesAnOddHeadDimension) {
  test::SmallBertShape shape;
  shape.hidden = 30;  // 4 heads would not divide it; 2 heads of 15
  auto c = test::small_bert_config(BertConfig::Arch::bert, shape);
  c.num_heads = 2;
  const auto w = random_weights(c, 0.0, 22);
  EncoderOptions o;
  o.dtype = DType::f32;
  o.pattern = Pattern::dense();
  o.attention = AttentionPrecision::bf16;
  try {
    BertEncoder::build(c, w, o);
    FAIL() << "expected NotSupported";
  } catch (const NotSupported& e) {
    EXPECT_NE(std::string(e.what()).find("head dimension 15"), std::string::npos) << e.what();
  }
  o.attention = AttentionPrecision::automatic;
  o.dtype = DType::int8;
  EXPECT_EQ(BertEncoder::build(c, w, o).attention_kernel().substr(0, 3), "f32");
}

TEST(BertEncoder, PaddingDoesNotChangeASequence) {
  const auto c = small_config();
  const auto w = random_weights(c, 0.0, 30);
  const auto enc = BertEncoder::build(c, w, {DType::f32, Pattern::dense(), 1});
  auto in = batch_input(c);
  // Sequence 0 alone, unpadded, against its padded row in the batch.
  EncoderInput one;
  one.batch = 1;
  one.seq = in.lengths[0];
  one.lengths = {in.lengths[0]};
  one.ids.assign(in.ids.begin(), in.ids.begin() + one.seq);
  one.token_types.assign(in.token_types.begin(), in.token_types.begin() + one.seq);
  const auto alone = enc.forward(one);
  const auto batched = enc.forward(in);
  for (int64_t i = 0; i < one.seq * c.hidden_size; ++i)
    EXPECT_NEAR(alone[i], batched[i], 1e-5) << i;
  for (int64_t i = in.lengths[0] * c.hidden_size; i < in.seq * c.hidden_size; ++i)
    ASSERT_EQ(batched[i], 0.0f) << "padded position not zero at " << i;
}

TEST(BertEncoder, RejectsBadInputsAndRunsConcurrently) {
  const auto c = small_config();
  const auto enc =
      BertEncoder::build(c, random_weights(c, 0.5, 40), {DType::int8, Pattern::automatic(), 2});
  auto in = batch_input(c);
  auto bad = in;
  bad.ids[5] = 50;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.lengths[1] = 13;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.ids.pop_back();
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.token_types[0] = 2;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.seq = 25;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);

  const auto want = enc.forward(in);
  std::vector<std::thread> callers;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&] {
      for (int r = 0; r < 5; ++r)
        if (enc.forward(in) != want) ++mismatches;
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(LayerNorm, VectorRowsMatchPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  for (int64_t width : {1, 7, 8, 15, 16, 24, 33, 384, 768, 1030}) {
    const int64_t rows = 5;
    // A large common offset makes a one-pass variance lose every digit; two float passes keep
    // the error at the inputs' own rounding (~1e-5 of values near 100).
    auto x = test::random_floats(static_cast<size_t>(rows * width), 3, 100, 102);
    const auto gamma = test::random_floats(static_cast<size_t>(width), 4, 0.5, 1.5);
    const auto beta = test::random_floats(static_cast<size_t>(width), 5, -1, 1);
    auto y = x;
    detail::layer_norm_rows_avx2(x.data(), rows, width, gamma.data(), beta.data(), 1e-12);
    detail::layer_norm_rows_portable(y.data(), rows, width, gamma.data(), beta.data(), 1e-12);
    test::expect_close(x, y, 5e-5, "width " + std::to_string(width));
    if (jit::isa_available(jit::Isa::avx512)) {
      auto z = test::random_floats(static_cast<size_t>(rows * width), 3, 100, 102);
      detail::layer_norm_rows_avx512(z.data(), rows, width, gamma.data(), beta.data(), 1e-12);
      test::expect_close(z, y, 5e-5, "avx512 width " + std::to_string(width));
    }
  }
}

TEST(Attention, VectorHeadMatchesPortable) {
  if (!jit::isa_available(jit::Isa::avx2)) GTEST_SKIP() << "this CPU lacks AVX2";
  // Lengths around the 6-row and 8-key tiles, head sizes with 16-, 8- and no-multiple-of-8
  // column tails; the context written with a stride wider than d (its gaps must stay untouched).
  std::vector<float> scratch;  // shared across calls, as the encoder's threads do
  for (int64_t len : {1, 5, 6, 7, 8, 12, 13, 24, 33, 40, 128, 130})
    for (int64_t d : {4, 8, 12, 24, 32, 64, 80}) {
      const int64_t stride = 3 * d + 5, ctx_stride = d + 3;
      const auto qkv = test::random_floats(static_cast<size_t>(len * stride), 7, -3, 3);
      std::vector<float> a(static_cast<size_t>(len * ctx_stride), 42.0f), b(a);
      detail::attention_head_avx2(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d, stride,
                                  a.data(), ctx_stride, scratch);
      detail::attention_head_portable(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d,
                                      stride, b.data(), ctx_stride, scratch);
      test::expect_close(a, b, 1e-5, "len " + std::to_string(len) + " d " + std::to_string(d));
      if (jit::isa_available(jit::Isa::avx512)) {
        // 12-row and 32/16/8-column AVX-512 tiles.
        std::vector<float> c(a.size(), 42.0f);
        detail::attention_head_avx512(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d,
                                      stride, c.data(), ctx_stride, scratch);
        test::expect_close(c, b, 1e-5,
                           "avx512 len " + std::to_string(len) + " d " + std::to_string(d));
      }
    }
}

TEST(Attention, Bf16HeadMatchesItsTwinAndFp32) {
  // Lengths around the 12-row and 16-key tiles (odd lengths: a key pair with one key), head sizes
  // with 16-column tails; the context written with a stride wider than d (gaps untouched).
  std::vector<float> scratch;
  for (int64_t len : {1, 2, 5, 12, 13, 16, 17, 33, 128, 131})
    for (int64_t d : {2, 6, 16, 24, 64, 80}) {
      const std::string what = "len " + std::to_string(len) + " d " + std::to_string(d);
      const int64_t stride = 3 * d + 5, ctx_stride = d + 3;
      const auto qkv = test::random_floats(static_cast<size_t>(len * stride), 11, -3, 3);
      std::vector<float> exact(static_cast<size_t>(len * ctx_stride), 42.0f), twin(exact);
      detail::attention_head_portable(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d,
                                      stride, exact.data(), ctx_stride, scratch);
      detail::attention_head_bf16_portable(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d,
                                           stride, twin.data(), ctx_stride, scratch);
      // bf16 operands (8 bits of mantissa) against exact fp32 attention: close, not equal.
      test::expect_close(twin, exact, 3e-2, "bf16 twin vs fp32, " + what);
      // The vdpbf16ps kernel, and where AMX runs the tile kernel (rows and dimensions padded to
      // 32: of these lengths and sizes only 64 needs none): same roundings; only the fp32
      // summation order and exp's last bits differ (a probability whose exp lands on the other
      // side of a bf16 rounding boundary moves by 2^-9 of itself).
      const std::pair<const char*, decltype(&detail::attention_head_bf16_amx)> kernels[] = {
          {"avx512_bf16",
           bf16_attention_runs_natively(d) ? detail::attention_head_bf16_avx512 : nullptr},
          {"amx_bf16", bf16_attention_runs_on_amx(d) ? detail::attention_head_bf16_amx : nullptr}};
      for (const auto& [name, kernel] : kernels) {
        if (kernel == nullptr) continue;
        std::vector<float> got(exact.size(), 42.0f);
        kernel(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d, stride, got.data(),
               ctx_stride, scratch);
        test::expect_close(got, twin, 2e-3, std::string(name) + " vs twin, " + what);
        for (int64_t i = 0; i < len; ++i)
          for (int64_t g = d; g < ctx_stride; ++g)
            ASSERT_EQ(got[static_cast<size_t>(i * ctx_stride + g)], 42.0f) << name << ", " << what;
      }
    }
}

// The AMX head from bf16 q, k, v (the encoder's qkv projection writes bf16 where the attention
// runs on AMX) gives exactly what it gives from fp32 ones that round to them.
TEST(Attention, AmxHeadFromBf16InputsEqualsTheFp32Entry) {
  std::vector<float> scratch;
  for (int64_t len : {1, 5, 33, 128, 131})
    for (int64_t d : {2, 24, 64, 80}) {
      if (!bf16_attention_runs_on_amx(d)) GTEST_SKIP() << "no AMX-BF16 here";
      const std::string what = "len " + std::to_string(len) + " d " + std::to_string(d);
      const int64_t stride = 3 * d + 5, ctx_stride = d + 3;
      const auto qkv = test::random_floats(static_cast<size_t>(len * stride), 13, -3, 3);
      const auto qkv_bf16 = sparse::to_bf16(qkv);
      std::vector<float> from_fp32(static_cast<size_t>(len * ctx_stride), 42.0f),
          from_bf16(from_fp32);
      detail::attention_head_bf16_amx(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d,
                                      stride, from_fp32.data(), ctx_stride, scratch);
      attention_head_bf16_amx(qkv_bf16.data(), qkv_bf16.data() + d, qkv_bf16.data() + 2 * d, len, d,
                              stride, from_bf16.data(), ctx_stride, scratch);
      EXPECT_EQ(from_bf16, from_fp32) << what;
    }
}

TEST(Attention, Bf16RoundsNaNToNaN) {
  if (!bf16_attention_runs_natively(64)) GTEST_SKIP() << "no AVX512_BF16 here";
  const int64_t len = 8, d = 64, stride = 3 * d;
  auto qkv = test::random_floats(static_cast<size_t>(len * stride), 12, -1, 1);
  qkv[static_cast<size_t>(2 * d + 3)] = NAN;  // one value of V
  std::vector<float> ctx(static_cast<size_t>(len * d)), scratch;
  for (auto head : {detail::attention_head_bf16_avx512, detail::attention_head_bf16_amx}) {
    if (head == detail::attention_head_bf16_amx && !bf16_attention_runs_on_amx(d)) continue;
    head(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, len, d, stride, ctx.data(), d, scratch);
    for (int64_t i = 0; i < len; ++i) EXPECT_TRUE(std::isnan(ctx[static_cast<size_t>(i * d + 3)]));
  }
}

}  // namespace
}  // namespace sparq::models
