// The GGUF reader: a file written by llama.cpp's own Python writer (the gguf package; the
// fixture holds each encoding beside gguf.quants' dequantization of it), then files built here
// byte by byte, deliberately broken (truncated anywhere, lying counts, lengths, dimensions,
// types and offsets, overlaps, random corruption), which must all give ModelFileError naming
// what was wrong, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparse/ggml_quants.hpp"
#include "src/gguf.hpp"

namespace sparq {
namespace {

namespace fs = std::filesystem;

TEST(GgufFixture, ReadsWhatTheGgufPackageWrote) {
  const auto g = GgufFile::open(std::string(SPARQ_FIXTURE_DIR) + "/ggml_quants.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_string("general.name"), "sparq fixture");
  EXPECT_EQ(g.get_uint("llama.block_count"), 2u);
  EXPECT_EQ(g.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_TRUE(g.value("sparq.flag").b);
  EXPECT_EQ(g.value("sparq.negative").i, -7);
  EXPECT_EQ(g.get_float("sparq.double"), 0.125);
  EXPECT_EQ(
      g.get_strings("tokenizer.ggml.tokens"),
      (std::vector<std::string>{"<s>", "hello", "\xC4\xA0world", "\xC3\xA9", "\xF0\x9F\x99\x82"}));
  EXPECT_EQ(g.get_floats("tokenizer.ggml.scores"),
            (std::vector<double>{0.0, -1.5, -2.25, -3.0, -4.0}));
  EXPECT_EQ(g.get_ints("tokenizer.ggml.token_type"), (std::vector<int64_t>{3, 1, 1, 1, 1}));
  for (const char* name : {"t_f32", "t_f16", "t_bf16", "t_q8_0", "t_q4_0", "t_q4_1"}) {
    SCOPED_TRACE(name);
    const GgufTensor& t = g.tensor(name);
    EXPECT_EQ(t.dims, (std::vector<int64_t>{64, 3}));
    const auto want = g.tensor(std::string(name) + ".expected").to_f32();
    EXPECT_EQ(t.to_f32(), want);  // bit for bit as gguf.quants.dequantize
  }
  // Random blocks of the types gguf.quants dequantizes but cannot quantize (3 rows of 256).
  for (const char* name :
       {"t_q5_0", "t_q5_1", "t_iq4_nl", "t_q2_k", "t_q3_k", "t_q4_k", "t_q5_k", "t_q6_k"}) {
    SCOPED_TRACE(name);
    const GgufTensor& t = g.tensor(name);
    EXPECT_EQ(t.dims, (std::vector<int64_t>{256, 3}));
    const auto want = g.tensor(std::string(name) + ".expected").to_f32();
    const auto got = t.to_f32();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << "element " << i;  // bit for bit as gguf.quants.dequantize
  }
  EXPECT_EQ(g.tensor_names().front(), "t_f32");
  EXPECT_THROW(g.tensor("missing"), ModelFileError);
  EXPECT_THROW(g.get_string("llama.block_count"), ModelFileError);
  EXPECT_THROW(g.get_uint("general.name"), ModelFileError);
  EXPECT_THROW(g.get_strings("tokenizer.ggml.scores"), ModelFileError);
  EXPECT_THROW(g.get_ints("tokenizer.ggml.tokens"), ModelFileError);
  EXPECT_THROW(g.value("no.such.key"), ModelFileError);
}

// Q8_K, which gguf.quants cannot dequantize (ggml keeps it for dot products; model files hold
// none), by construction: fp32 d, 256 int8, 16 int16 sums that dequantization ignores.
TEST(GgmlQuants, Q8KIsScaleTimesValue) {
  std::vector<uint8_t> block(292, 0);
  const float d = 0.03125f;
  std::memcpy(block.data(), &d, 4);
  for (int j = 0; j < 256; ++j) block[4 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 128));
  for (int k = 0; k < 32; ++k) block[260 + k] = 0xab;
  std::vector<float> y(256);
  sparse::dequantize(sparse::GgmlType::q8_k, block.data(), 256, y.data());
  for (int j = 0; j < 256; ++j) ASSERT_EQ(y[j], d * static_cast<float>(j - 128)) << j;
  EXPECT_EQ(sparse::ggml_block_bytes(sparse::GgmlType::q8_k), 292);
  EXPECT_EQ(sparse::ggml_block_elements(sparse::GgmlType::q4_k), 256);
  EXPECT_EQ(sparse::ggml_type_from_id(15), sparse::GgmlType::q8_k);
  EXPECT_FALSE(sparse::ggml_type_from_id(16).has_value());  // IQ2_XXS
}

// A GGUF file assembled field by field, so that tests can write any lie they like.
class Builder {
 public:
  Builder& u32(uint32_t v) { return raw(&v, 4); }
  Builder& u64(uint64_t v) { return raw(&v, 8); }
  Builder& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Builder& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  Builder& pad_to(size_t alignment) {
    while (bytes.size() % alignment) bytes.push_back(0);
    return *this;
  }
  std::vector<uint8_t> bytes;
};

class GgufBroken : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("sparq_gguf_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::vector<uint8_t>& bytes, const std::string& name = "m.gguf") {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
    const std::string path = write(bytes);
    try {
      GgufFile::open(path);
      ADD_FAILURE() << "opened a broken file";
    } catch (const ModelFileError& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
            << "message lacks '" << f << "': " << e.what();
    }
  }

  // A valid file: two keys, a Q8_0 tensor [32 x 2] and an F32 tensor [4], 32-byte alignment.
  static Builder valid(uint32_t q8_dims0 = 32, uint64_t f32_offset = 96) {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(2).u64(2);
    b.str("general.architecture").u32(8).str("llama");
    b.str("llama.block_count").u32(4).u32(1);
    b.str("w").u32(2).u64(q8_dims0).u64(2).u32(8).u64(0);
    b.str("v").u32(1).u64(4).u32(0).u64(f32_offset);
    b.pad_to(32);
    for (int blk = 0; blk < 2; ++blk) {
      const uint16_t d = 0x3c00;  // 1.0
      b.raw(&d, 2);
      for (int j = 0; j < 32; ++j) b.bytes.push_back(static_cast<uint8_t>(j - 16));
    }
    b.pad_to(32);
    const float v[4] = {1, 2, 3, 4};
    b.raw(v, sizeof v);
    return b;
  }

  fs::path dir_;
};

TEST_F(GgufBroken, TheValidFileReads) {
  const auto g = GgufFile::open(write(valid().bytes));
  const auto w = g.tensor("w").to_f32();
  ASSERT_EQ(w.size(), 64u);
  EXPECT_EQ(w[0], -16.0f);
  EXPECT_EQ(w[63], 15.0f);
  EXPECT_EQ(g.tensor("v").to_f32(), (std::vector<float>{1, 2, 3, 4}));
}

TEST_F(GgufBroken, EveryTruncationIsAnError) {
  const auto bytes = valid().bytes;
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::string path = write(std::vector<uint8_t>(bytes.begin(), bytes.begin() + n));
    EXPECT_THROW(GgufFile::open(path), ModelFileError) << "truncated to " << n << " bytes";
  }
}

TEST_F(GgufBroken, LyingHeadersGiveClearErrors) {
  expect_error(Builder().u32(0x12345678).u32(3).u64(0).u64(0).bytes, {"not a GGUF file"});
  expect_error(Builder().u32(0x46554747u).u32(1).u64(0).u64(0).bytes, {"version 1"});
  expect_error(Builder().u32(0x46554747u).u32(3).u64(uint64_t{1} << 40).u64(0).bytes,
               {"tensors", "at most"});
  // A key whose string length is huge, and one that runs past the end.
  expect_error(Builder().u32(0x46554747u).u32(3).u64(0).u64(1).u64(uint64_t{1} << 50).bytes,
               {"metadata entry 0", "string of"});
  expect_error(Builder().u32(0x46554747u).u32(3).u64(0).u64(1).u64(100).raw("abc", 3).bytes,
               {"metadata entry 0", "truncated"});
  // Value types: unknown, nested arrays, huge arrays, arrays that do not fit, bad bools.
  auto kv = [](auto&& value) {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(0).u64(1).str("k");
    value(b);
    return b.bytes;
  };
  expect_error(kv([](Builder& b) { b.u32(13); }), {"key 'k'", "value type 13"});
  expect_error(kv([](Builder& b) { b.u32(9).u32(9).u64(1); }), {"key 'k'", "element type 9"});
  expect_error(kv([](Builder& b) { b.u32(9).u32(4).u64(uint64_t{1} << 40); }),
               {"key 'k'", "elements"});
  expect_error(kv([](Builder& b) { b.u32(9).u32(10).u64(1000).u64(1); }),
               {"key 'k'", "array data", "truncated"});
  expect_error(kv([](Builder& b) { b.u32(7).raw("\x05", 1); }), {"key 'k'", "bool value 5"});
  // The same key twice; an alignment that is no power of two.
  {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(0).u64(2).str("k").u32(4).u32(1).str("k").u32(4).u32(2);
    expect_error(b.bytes, {"key 'k' appears twice"});
  }
  {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(0).u64(1).str("general.alignment").u32(4).u32(24);
    expect_error(b.bytes, {"general.alignment", "power of two"});
  }
}

TEST_F(GgufBroken, LyingTensorInfosGiveClearErrors) {
  auto tensor = [](auto&& info) {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(1).u64(0).str("t");
    info(b);
    b.pad_to(32);
    b.bytes.resize(b.bytes.size() + 256, 0);
    return b.bytes;
  };
  expect_error(tensor([](Builder& b) { b.u32(5); }), {"tensor 't'", "5 dimensions"});
  expect_error(tensor([](Builder& b) { b.u32(0); }), {"tensor 't'", "0 dimensions"});
  expect_error(tensor([](Builder& b) { b.u32(2).u64(4).u64(0); }), {"tensor 't'", "dimension 0"});
  expect_error(tensor([](Builder& b) { b.u32(3).u64(1 << 20).u64(1 << 20).u64(1 << 20); }),
               {"tensor 't'", "2^50"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(256).u32(16).u64(0); }),
               {"tensor 't' is IQ2_XXS", "sparq reads F32", "Q4_K", "Q6_K"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(64).u32(12).u64(0); }),
               {"tensor 't'", "64 elements", "Q4_K blocks of 256"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(256).u32(99).u64(0); }),
               {"tensor 't' is type 99"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(48).u32(2).u64(0); }),
               {"tensor 't'", "48 elements", "Q4_0 blocks of 32"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(4).u32(0).u64(8); }),
               {"tensor 't'", "offset 8", "alignment"});
  expect_error(tensor([](Builder& b) { b.u32(1).u64(4096).u32(0).u64(0); }),
               {"tensor 't'", "past the end", "truncated"});
  expect_error(valid(32, 32).bytes, {"'w' and 'v' overlap"});
  {
    Builder b;
    b.u32(0x46554747u).u32(3).u64(2).u64(0);
    b.str("t").u32(1).u64(4).u32(0).u64(0).str("t").u32(1).u64(4).u32(0).u64(32);
    expect_error(b.bytes, {"tensor 't' appears twice"});
  }
}

TEST_F(GgufBroken, RandomCorruptionNeverCrashes) {
  const auto good = valid().bytes;
  std::mt19937 rng(11);
  int loaded = 0, rejected = 0;
  for (int round = 0; round < 400; ++round) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % 140] = static_cast<uint8_t>(rng());
    try {
      const auto g = GgufFile::open(write(bytes));
      for (const auto& name : g.tensor_names()) (void)g.tensor(name).to_f32();
      ++loaded;
    } catch (const ModelFileError&) {
      ++rejected;
    }
  }
  EXPECT_EQ(loaded + rejected, 400);
  EXPECT_GT(rejected, 0);
}

TEST_F(GgufBroken, MissingAndEmptyFiles) {
  EXPECT_THROW(GgufFile::open((dir_ / "absent.gguf").string()), ModelFileError);
  expect_error({}, {"the magic number", "truncated"});
  EXPECT_THROW(GgufFile::open(dir_.string()), ModelFileError);  // a folder
}

}  // namespace
}  // namespace sparq
