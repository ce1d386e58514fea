// The safetensors reader: values of every dtype read back, metadata, sharded folders, and
// deliberately broken files (truncated, lying headers, wrong dtypes, huge shapes, overlaps, path
// tricks, random header corruption), which must all give ModelFileError naming the file and,
// where there is one, the tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "src/safetensors.hpp"

namespace sparq {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("sparq_safetensors_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes an 8-byte length, the header text as given, then the data bytes.
  std::string write(const std::string& file, const std::string& header,
                    const std::vector<uint8_t>& data) {
    const std::string path = (dir_ / file).string();
    std::ofstream out(path, std::ios::binary);
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
    out << header;
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    return path;
  }

  // A valid file: "w" F32 [2, 3], "h" F16 [4], "b" BF16 [2], metadata.
  std::string valid(const std::string& file = "model.safetensors") {
    std::vector<uint8_t> data;
    const float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
    const uint16_t h[4] = {0x3c00, 0xc100, 0x7bff, 0x0001};  // 1, -2.5, 65504, 2^-24
    const uint16_t b[2] = {0x3f80, 0xc040};                  // 1, -3
    auto append = [&](const void* p, size_t n) {
      data.insert(data.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    append(w, sizeof w);
    append(h, sizeof h);
    append(b, sizeof b);
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
        R"("h":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
        R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[32,36]}})";
    return write(file, header, data);
  }

  // Expects ModelFileError whose message contains every fragment.
  static void expect_error(const std::string& path, const std::vector<std::string>& fragments) {
    try {
      SafetensorsFile::open(path);
      ADD_FAILURE() << "opened a broken file";
    } catch (const ModelFileError& e) {
      for (const auto& f : fragments)
        EXPECT_NE(std::string(e.what()).find(f), std::string::npos)
            << "message lacks '" << f << "': " << e.what();
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, ReadsEveryDtypeAndTheMetadata) {
  const auto file = SafetensorsFile::open(valid());
  EXPECT_EQ(file.names(), (std::vector<std::string>{"b", "h", "w"}));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  const TensorView& w = file.tensor("w");
  EXPECT_EQ(w.dtype, TensorDType::f32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w.to_f32(), (std::vector<float>{1, -2, 3.5f, 0, 1e-3f, -7}));
  EXPECT_EQ(file.tensor("h").to_f32(),
            (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24)}));
  EXPECT_EQ(file.tensor("b").to_f32(), (std::vector<float>{1.0f, -3.0f}));
  try {
    file.tensor("missing");
    ADD_FAILURE();
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
}

TEST_F(SafetensorsTest, BrokenFilesGiveClearErrors) {
  const std::vector<uint8_t> d8(8, 0);
  expect_error((dir_ / "absent.safetensors").string(), {"absent.safetensors", "cannot open"});
  {
    const std::string p = (dir_ / "short").string();
    std::ofstream(p) << "abc";
    expect_error(p, {"short", "8-byte header length"});
  }
  expect_error(write("blank", std::string(20, ' '), {}), {"not valid JSON"});
  {  // header length beyond the file
    const std::string p = (dir_ / "lying_length").string();
    std::ofstream out(p, std::ios::binary);
    const uint64_t n = 1000;
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << "{}";
    out.close();
    expect_error(p, {"header claims 1000 bytes"});
  }
  expect_error(write("json", "{not json", {}), {"not valid JSON"});
  expect_error(write("array", "[1,2]", {}), {"not a JSON object"});
  expect_error(write("nodtype", R"({"t":{"shape":[2],"data_offsets":[0,8]}})", d8),
               {"'t'", "dtype"});
  expect_error(write("f8", R"({"t":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", d8),
               {"'t'", "F8_E4M3", "F64, F32, F16, BF16, I64"});
  expect_error(write("i64", R"({"t":{"dtype":"I64","shape":[2],"data_offsets":[0,8]}})", d8),
               {"'t'", "needs 16"});
  expect_error(write("negative", R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", d8),
               {"'t'", "shape"});
  expect_error(write("lie", R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", d8),
               {"'t'", "needs 12"});
  expect_error(write("past", R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", d8),
               {"'t'", "past the end", "truncated"});
  expect_error(write("huge",
                     R"({"t":{"dtype":"F32","shape":[1099511627776,1099511627776],)"
                     R"("data_offsets":[0,8]}})",
                     d8),
               {"'t'", "2^50"});
  expect_error(write("pair", R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", d8),
               {"'t'", "[begin, end]"});
  expect_error(write("overlap",
                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                     d8),
               {"overlap"});
  expect_error(write("meta", R"({"__metadata__":{"k":1}})", {}), {"__metadata__"});
  {  // a valid file cut short
    const std::string p = valid("cut.safetensors");
    fs::resize_file(p, fs::file_size(p) - 3);
    expect_error(p, {"cut.safetensors", "'b'", "truncated"});
  }
}

// Random corruption of a valid header: the reader either loads the file or throws
// ModelFileError; it never crashes or reads outside the mapping.
TEST_F(SafetensorsTest, CorruptedHeadersNeverCrash) {
  const std::string good = valid("good.safetensors");
  std::ifstream in(good, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> pos(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int loaded = 0, rejected = 0;
  for (int round = 0; round < 300; ++round) {
    auto copy = bytes;
    for (int k = 0; k < 1 + round % 4; ++k)
      copy[std::min(pos(rng), size_t{250})] = static_cast<char>(byte(rng));
    const std::string p = (dir_ / "fuzz.safetensors").string();
    std::ofstream(p, std::ios::binary)
        .write(copy.data(), static_cast<std::streamsize>(copy.size()));
    try {
      const auto f = SafetensorsFile::open(p);
      for (const auto& name : f.names()) (void)f.tensor(name).to_f32();
      ++loaded;
    } catch (const ModelFileError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_EQ(loaded + rejected, 300);
}

TEST_F(SafetensorsTest, WriterRoundTripsEveryDtype) {
  const std::vector<float> v = {1.0f,  -2.5f,    65504.0f, std::ldexp(1.0f, -24),
                                1e-8f, 70000.0f, 0.1f,     -0.0f};
  const std::string p = (dir_ / "written.safetensors").string();
  write_safetensors(p,
                    {{"a", TensorDType::f32, {2, 4}, v.data()},
                     {"b", TensorDType::f16, {8}, v.data()},
                     {"c", TensorDType::bf16, {4, 2}, v.data()},
                     {"empty", TensorDType::f32, {0, 3}, nullptr}},
                    {{"note", "sparq"}});
  const auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata().at("note"), "sparq");
  EXPECT_EQ(f.tensor("a").to_f32(), v);
  EXPECT_EQ(f.tensor("b").to_f32(),
            (std::vector<float>{1.0f, -2.5f, 65504.0f, std::ldexp(1.0f, -24), 0.0f,
                                std::numeric_limits<float>::infinity(), 0.0999755859375f, -0.0f}));
  std::vector<float> bf(v.size());
  for (size_t i = 0; i < v.size(); ++i) bf[i] = sparse::from_bf16(sparse::to_bf16(v[i]));
  EXPECT_EQ(f.tensor("c").to_f32(), bf);
  EXPECT_EQ(f.tensor("empty").elements(), 0);
  EXPECT_THROW(write_safetensors(p, {{"a", TensorDType::f32, {1}, v.data()},
                                     {"a", TensorDType::f32, {1}, v.data()}}),
               InvalidArgument);
}

TEST_F(SafetensorsTest, IntegerTensorsAreReadAndPassedThroughButAreNoWeights) {
  const int64_t ids[3] = {0, 1, -5};
  const uint8_t flags[2] = {1, 0};
  const double d[2] = {0.1, -1e300};
  const std::string p = (dir_ / "ints.safetensors").string();
  write_safetensors(p, {{"ids", TensorDType::i64, {1, 3}, nullptr, ids},
                        {"flags", TensorDType::boolean, {2}, nullptr, flags},
                        {"d", TensorDType::f64, {2}, nullptr, d}});
  const auto f = SafetensorsFile::open(p);
  const TensorView& t = f.tensor("ids");
  EXPECT_EQ(t.dtype, TensorDType::i64);
  ASSERT_EQ(t.bytes, 24);
  EXPECT_EQ(std::memcmp(t.data, ids, 24), 0);
  EXPECT_EQ(f.tensor("flags").bytes, 2);
  EXPECT_EQ(f.tensor("d").to_f32(), (std::vector<float>{0.1f, -INFINITY}));
  try {
    (void)t.to_f32();
    ADD_FAILURE() << "an I64 tensor converted to float";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("'ids' is I64"), std::string::npos) << e.what();
  }
  const std::vector<float> v = {1, 2};
  EXPECT_THROW(write_safetensors(p, {{"i", TensorDType::i32, {2}, v.data()}}), InvalidArgument);
}

TEST_F(SafetensorsTest, ShardedFolders) {
  {
    std::vector<uint8_t> d(8);
    const float v[2] = {4, 5};
    std::memcpy(d.data(), v, 8);
    write("model-00001-of-00002.safetensors",
          R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", d);
    write("model-00002-of-00002.safetensors",
          R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", {0, 0, 128, 63});
  }
  const auto index = dir_ / "model.safetensors.index.json";
  std::ofstream(index) << R"({"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors",)"
                          R"("y":"model-00002-of-00002.safetensors"}})";
  const auto model = SafetensorsModel::open(dir_.string());
  EXPECT_EQ(model.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(model.tensor("x").to_f32(), (std::vector<float>{4, 5}));
  EXPECT_EQ(model.tensor("y").to_f32(), (std::vector<float>{1}));
  EXPECT_THROW(model.tensor("z"), ModelFileError);

  std::ofstream(index) << R"({"weight_map":{"x":"../escape.safetensors"}})";
  EXPECT_THROW(SafetensorsModel::open(dir_.string()), ModelFileError);
  std::ofstream(index) << R"({"weight_map":{"z":"model-00001-of-00002.safetensors"}})";
  try {
    SafetensorsModel::open(dir_.string());
    ADD_FAILURE();
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("'z'"), std::string::npos) << e.what();
  }
  fs::remove(index);
  EXPECT_THROW(SafetensorsModel::open(dir_.string()), ModelFileError);
}

}  // namespace
}  // namespace sparq
