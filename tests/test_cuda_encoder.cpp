// The BERT encoder with EncoderOptions.device cuda (the whole forward pass on a GPU) against the
// CPU encoder in fp32 on the same weights: f16, bf16 and int8, dense and 2:4, padding, DistilBERT,
// long sequences with wide heads, pooling, profiles, bad inputs and concurrent callers. Without a
// usable GPU those tests skip and say why; the errors asked-for-but-missing CUDA gives are tested
// everywhere.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "small_bert.hpp"
#include "sparq/device.hpp"
#include "sparq/error.hpp"
#include "sparq/models/bert_encoder.hpp"
#include "sparse/prune.hpp"
#include "test_util.hpp"

namespace sparq::models {
namespace {

BertConfig small_config(BertConfig::Arch arch = BertConfig::Arch::bert) {
  return test::small_bert_config(arch, {64, 128, 40});
}

// Linear layers scaled by 2 / sqrt(in) so that activations stay near unit size at any width,
// pruned by `prune` when given.
BertWeights random_weights(const BertConfig& c, uint32_t seed, const test::PruneFn& prune = {}) {
  return test::random_bert_weights(
      c, seed, [](int64_t in) { return 2.0f / std::sqrt(static_cast<float>(in)); }, prune);
}

std::vector<float> two_of_four(const std::vector<float>& w, int64_t out, int64_t in) {
  return sparse::prune_n_m(w, out, in, 2, 4);
}

// Sequences of different lengths padded to `seq`; with the default seq 37 the attention kernel
// sees partial query blocks (16 rows) and partial key tiles (32 keys).
EncoderInput batch_input(const BertConfig& c, int64_t seq = 37,
                         std::vector<int64_t> lengths = {23, 37, 1}) {
  EncoderInput in;
  in.batch = static_cast<int64_t>(lengths.size());
  in.seq = seq;
  in.lengths = std::move(lengths);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(c.vocab_size - 1));
  for (int64_t i = 0; i < in.batch * in.seq; ++i) in.ids.push_back(id(rng));
  if (c.type_vocab_size)
    for (int64_t i = 0; i < in.batch * in.seq; ++i) in.token_types.push_back((i % in.seq) > 4);
  return in;
}

EncoderOptions cpu_f32() {
  EncoderOptions o;
  o.dtype = DType::f32;
  o.pattern = Pattern::dense();
  o.threads = 2;
  return o;
}

EncoderOptions on_gpu(DType dtype, Pattern pattern = Pattern::dense()) {
  EncoderOptions o;
  o.dtype = dtype;
  o.pattern = pattern;
  o.device = Device::cuda(0);
  return o;
}

// Every real position's hidden state close in direction to the CPU's (the smallest cosine over
// positions at least `min_cosine`), every padded position exactly zero.
void expect_matches(const std::vector<float>& got, const std::vector<float>& want,
                    const EncoderInput& in, int64_t hidden, double min_cosine) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 2.0;
  int64_t worst_at = -1;
  for (int64_t b = 0; b < in.batch; ++b)
    for (int64_t t = 0; t < in.seq; ++t) {
      const int64_t row = (b * in.seq + t) * hidden;
      if (t >= in.lengths[b]) {
        for (int64_t i = 0; i < hidden; ++i)
          ASSERT_EQ(got[row + i], 0.0f) << "padded position " << t << " of sequence " << b;
        continue;
      }
      double cos = test::cosine(&got[row], &want[row], hidden);
      if (std::isnan(cos)) cos = -2.0;  // a NaN anywhere in the row
      if (cos < worst) {
        worst = cos;
        worst_at = b * in.seq + t;
      }
    }
  EXPECT_GE(worst, min_cosine) << "worst at token " << worst_at << " (sequence "
                               << worst_at / in.seq << ", position " << worst_at % in.seq << ")";
}

double min_cosine_for(DType dtype) { return dtype == DType::f16 ? 0.999 : 0.995; }

std::string describe(const BertEncoder& e) {
  std::string s;
  for (const auto& [kind, info] : e.kernels())
    s += kind + ": " + info.kernel + " [" + info.pattern + "] (" + info.reason + "); ";
  return s;
}

// --- Everywhere: what asking for a GPU that is not there, or f32 on it, says. ---

TEST(CudaEncoder, AskingForCudaWithoutAUsableGpuThrowsNotSupported) {
  const CudaStatus s = cuda_status();
  if (s.usable) GTEST_SKIP() << "a GPU is usable here: " << s.message;
  const auto c = small_config();
  const auto w = random_weights(c, 1);
  EXPECT_THROW_WITH(BertEncoder::build(c, w, on_gpu(DType::f16)), NotSupported, "cuda:0");
}

TEST(CudaEncoder, F32AndBadDeviceIndicesAreRefusedBeforeLoading) {
  const auto c = small_config();
  const auto w = random_weights(c, 2);
  EXPECT_THROW_WITH(BertEncoder::build(c, w, on_gpu(DType::f32)), NotSupported, "f16");
  auto o = on_gpu(DType::f16);
  o.device.index = -1;
  EXPECT_THROW_WITH(BertEncoder::build(c, w, o), InvalidArgument, "device index must be >= 0");
}

// --- On a GPU. ---

TEST(CudaEncoder, MatchesTheCpuEncoderInEveryDtype) {
  if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA GPU: " << cuda_status().message;
  for (auto arch : {BertConfig::Arch::bert, BertConfig::Arch::distilbert}) {
    const auto c = small_config(arch);
    const auto w = random_weights(c, 10);
    const auto in = batch_input(c);
    const auto want = BertEncoder::build(c, w, cpu_f32()).forward(in);
    for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
      const auto enc = BertEncoder::build(c, w, on_gpu(dtype));
      SCOPED_TRACE(testing::Message() << (arch == BertConfig::Arch::bert ? "bert" : "distilbert")
                                      << " " << to_string(dtype) << ": " << describe(enc));
      expect_matches(enc.forward(in), want, in, c.hidden_size, min_cosine_for(dtype));
      const auto kernels = enc.kernels();
      ASSERT_EQ(kernels.size(), 4u);
      EXPECT_EQ(kernels[0].first, "query/key/value");
      for (const auto& [kind, info] : kernels) {
        EXPECT_EQ(info.pattern, "dense") << kind;
        EXPECT_NE(info.isa.find("cuda"), std::string::npos) << kind << ": " << info.isa;
      }
    }
  }
}

// A model pruned by `prune`, on the GPU with `pattern` in every dtype, against the CPU encoder in
// fp32; every layer runs `pattern` unless `fallback_allowed` (2:4 without cuSPARSELt runs dense and
// says so in the reason).
void expect_sparse_model_matches(uint32_t seed, const test::PruneFn& prune, const Pattern& pattern,
                                 bool fallback_allowed) {
  const auto c = small_config();
  const auto w = random_weights(c, seed, prune);
  const auto in = batch_input(c);
  const auto want = BertEncoder::build(c, w, cpu_f32()).forward(in);
  for (DType dtype : {DType::f16, DType::bf16, DType::int8}) {
    const auto enc = BertEncoder::build(c, w, on_gpu(dtype, pattern));
    SCOPED_TRACE(testing::Message() << to_string(dtype) << ": " << describe(enc));
    expect_matches(enc.forward(in), want, in, c.hidden_size, min_cosine_for(dtype));
    if (!fallback_allowed) {
      for (const auto& [kind, info] : enc.kernels()) {
        EXPECT_EQ(info.pattern, pattern.to_string()) << kind;
      }
    }
  }
}

TEST(CudaEncoder, TwoOfFourModelMatchesTheCpuEncoder) {
  if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA GPU: " << cuda_status().message;
  expect_sparse_model_matches(20, two_of_four, Pattern::n_of_m(2, 4), true);
}

TEST(CudaEncoder, BlockSparseModelMatchesTheCpuEncoder) {
  if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA GPU: " << cuda_status().message;
  expect_sparse_model_matches(
      50,
      [](const std::vector<float>& v, int64_t out, int64_t in) {
        return sparse::prune_blocks(v, out, in, {16, 16}, 0.6);
      },
      Pattern::blocks(16, 16), false);
}

TEST(CudaEncoder, LongSequencesAndWideHeads) {
  if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA GPU: " << cuda_status().message;
  // head_dim 128 at seq 512 needs more than 48 KiB of shared memory per attention block.
  BertConfig c = small_config();
  c.vocab_size = 100;
  c.hidden_size = 256;
  c.num_heads = 2;
  c.num_layers = 1;
  c.intermediate_size = 256;
  c.max_position = 512;
  const auto w = random_weights(c, 30);
  const auto in = batch_input(c, 512, {512, 300});
  const auto want = BertEncoder::build(c, w, cpu_f32()).forward(in);
  const auto enc = BertEncoder::build(c, w, on_gpu(DType::f16));
  expect_matches(enc.forward(in), want, in, c.hidden_size, min_cosine_for(DType::f16));
}

TEST(CudaEncoder, PoolingProfilesBadInputsAndConcurrentCallers) {
  if (!cuda_status().usable) GTEST_SKIP() << "no usable CUDA GPU: " << cuda_status().message;
  const auto c = small_config();
  const auto w = random_weights(c, 40);
  const auto in = batch_input(c);
  const auto cpu = BertEncoder::build(c, w, cpu_f32());
  const auto enc = BertEncoder::build(c, w, on_gpu(DType::f16));
  for (auto pooling : {BertEncoder::Pooling::mean, BertEncoder::Pooling::cls}) {
    const auto a = cpu.embed(in, pooling);
    const auto b = enc.embed(in, pooling);
    ASSERT_EQ(b.size(), a.size());
    for (int64_t s = 0; s < in.batch; ++s)
      EXPECT_GE(test::cosine(&a[s * c.hidden_size], &b[s * c.hidden_size], c.hidden_size), 0.999)
          << "sequence " << s;
  }

  const auto want = enc.forward(in);
  ForwardProfile profile;
  const auto profiled = enc.forward(in, &profile);
  EXPECT_GT(profile.total(), 0.0);
  EXPECT_GT(profile.attention, 0.0);
  expect_matches(profiled, want, in, c.hidden_size, 0.99999);

  auto bad = in;
  bad.ids[5] = 50;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.lengths[1] = 38;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);
  bad = in;
  bad.seq = 41;
  EXPECT_THROW(enc.forward(bad), InvalidArgument);

  std::vector<std::thread> callers;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&] {
      for (int r = 0; r < 4; ++r) {
        const auto got = enc.forward(in);
        // Relative: cuBLAS promises bit-identical results only with one active stream, and one
        // fp16 ulp at 2..4 is 2e-3.
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i)
          worst = std::max(worst, std::fabs(double(got[i]) - want[i]) / (1.0 + std::fabs(want[i])));
        if (!(worst <= 2e-3)) ++mismatches;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace sparq::models
