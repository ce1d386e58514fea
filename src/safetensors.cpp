#include "src/safetensors.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "sparq/error.hpp"
#include "sparse/bf16.hpp"
#include "sparse/f16.hpp"
#include "src/mapped_file.hpp"

namespace sparq {

namespace {

// The format's own limit on the header (safetensors rejects larger ones).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
// Far beyond any real tensor, small enough that products cannot overflow int64.
constexpr int64_t kMaxDim = int64_t{1} << 40, kMaxElements = int64_t{1} << 50;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ModelFileError(path + ": " + what);
}

constexpr TensorDType kAllDTypes[] = {
    TensorDType::f64, TensorDType::f32, TensorDType::f16,    TensorDType::bf16, TensorDType::i64,
    TensorDType::i32, TensorDType::i16, TensorDType::i8,     TensorDType::u64,  TensorDType::u32,
    TensorDType::u16, TensorDType::u8,  TensorDType::boolean};

TensorDType parse_dtype(const std::string& path, const std::string& name, const std::string& d) {
  for (TensorDType t : kAllDTypes)
    if (d == to_string(t)) return t;
  fail(path, "tensor '" + name + "' has dtype '" + d +
                 "'; sparq reads F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and "
                 "BOOL");
}

}  // namespace

const char* to_string(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::f64:
      return "F64";
    case TensorDType::f32:
      return "F32";
    case TensorDType::f16:
      return "F16";
    case TensorDType::bf16:
      return "BF16";
    case TensorDType::i64:
      return "I64";
    case TensorDType::i32:
      return "I32";
    case TensorDType::i16:
      return "I16";
    case TensorDType::i8:
      return "I8";
    case TensorDType::u64:
      return "U64";
    case TensorDType::u32:
      return "U32";
    case TensorDType::u16:
      return "U16";
    case TensorDType::u8:
      return "U8";
    case TensorDType::boolean:
      return "BOOL";
  }
  return "?";
}

int element_bytes(TensorDType dtype) {
  switch (dtype) {
    case TensorDType::f64:
    case TensorDType::i64:
    case TensorDType::u64:
      return 8;
    case TensorDType::f32:
    case TensorDType::i32:
    case TensorDType::u32:
      return 4;
    case TensorDType::f16:
    case TensorDType::bf16:
    case TensorDType::i16:
    case TensorDType::u16:
      return 2;
    case TensorDType::i8:
    case TensorDType::u8:
    case TensorDType::boolean:
      return 1;
  }
  return 1;
}

bool is_float(TensorDType dtype) {
  return dtype == TensorDType::f64 || dtype == TensorDType::f32 || dtype == TensorDType::f16 ||
         dtype == TensorDType::bf16;
}

int64_t TensorView::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<float> TensorView::to_f32() const {
  if (!is_float(dtype))
    throw ModelFileError("tensor '" + name + "' is " + to_string(dtype) +
                         "; a float tensor (F32, F16, BF16 or F64) was expected");
  const int64_t n = elements();
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == TensorDType::f32) {
      std::memcpy(&out[static_cast<size_t>(i)], data + 4 * i, 4);
    } else if (dtype == TensorDType::f64) {
      double d;
      std::memcpy(&d, data + 8 * i, 8);
      out[static_cast<size_t>(i)] = static_cast<float>(d);
    } else {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      out[static_cast<size_t>(i)] =
          dtype == TensorDType::bf16 ? sparse::from_bf16(h) : sparse::from_f16(h);
    }
  }
  return out;
}

struct SafetensorsFile::Mapping {
  MappedFile file;
};

void SafetensorsFile::release(const TensorView& t) const {
  if (mapping_) mapping_->file.release(t.data, static_cast<uint64_t>(t.bytes));
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = std::make_unique<Mapping>();
  file.mapping_->file = MappedFile::open(path);
  const uint64_t size = file.mapping_->file.size();
  if (size < 8)
    fail(path, "the file is " + std::to_string(size) +
                   " bytes; a safetensors file starts with an 8-byte header length");
  const uint8_t* base = file.mapping_->file.data();

  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | base[i];
  if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8)
    fail(path, "the header claims " + std::to_string(header_bytes) + " bytes but the file has " +
                   std::to_string(size - 8) + " after the length (and headers are at most " +
                   std::to_string(kMaxHeaderBytes) + ")");
  const uint64_t data_bytes = size - 8 - header_bytes;
  const uint8_t* data = base + 8 + header_bytes;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_bytes);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("the header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "the header is not a JSON object");

  std::vector<std::pair<int64_t, std::string>> extents;  // begin offset, name (for overlaps)
  std::map<std::string, int64_t> ends;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail(path, "__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value of '" + key + "' is not a string");
        file.metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) fail(path, where + ": its entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string())
      fail(path, where + ": no string 'dtype'");
    if (!entry.contains("shape") || !entry["shape"].is_array())
      fail(path, where + ": no array 'shape'");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2)
      fail(path, where + ": 'data_offsets' is not a [begin, end] pair");
    TensorView view;
    view.name = name;
    view.dtype = parse_dtype(path, name, entry["dtype"].get<std::string>());
    int64_t elements = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > kMaxDim)
        fail(path, where + ": shape " + entry["shape"].dump() +
                       " holds something other than a dimension in [0, 2^40]");
      const int64_t dim = d.get<int64_t>();
      // Checked before multiplying: the product of several 2^40 dimensions overflows.
      if (dim != 0 && elements > kMaxElements / dim)
        fail(path, where + ": shape " + entry["shape"].dump() + " has more than 2^50 elements");
      view.shape.push_back(dim);
      elements *= dim;
    }
    int64_t offsets[2];
    for (int i = 0; i < 2; ++i) {
      const auto& o = entry["data_offsets"][static_cast<size_t>(i)];
      if (!o.is_number_integer() || o.get<int64_t>() < 0)
        fail(path, where + ": data_offsets " + entry["data_offsets"].dump() +
                       " are not non-negative integers");
      offsets[i] = o.get<int64_t>();
    }
    const int64_t bytes = elements * element_bytes(view.dtype);
    if (offsets[1] < offsets[0] || offsets[1] - offsets[0] != bytes)
      fail(path, where + ": data_offsets " + entry["data_offsets"].dump() + " span " +
                     std::to_string(offsets[1] - offsets[0]) + " bytes, but " +
                     to_string(view.dtype) + " " + entry["shape"].dump() + " needs " +
                     std::to_string(bytes));
    if (static_cast<uint64_t>(offsets[1]) > data_bytes)
      fail(path, where + ": data_offsets " + entry["data_offsets"].dump() +
                     " reach past the end of the data (" + std::to_string(data_bytes) +
                     " bytes): the file is truncated or the header lies");
    view.data = data + offsets[0];
    view.bytes = bytes;
    if (bytes > 0) extents.emplace_back(offsets[0], name);
    ends[name] = offsets[1];
    file.tensors_.emplace(name, std::move(view));
  }
  // Tensors must not share bytes.
  std::sort(extents.begin(), extents.end());
  for (size_t i = 1; i < extents.size(); ++i)
    if (extents[i].first < ends[extents[i - 1].second])
      fail(path, "tensors '" + extents[i - 1].second + "' and '" + extents[i].second +
                     "' overlap in the data");
  return file;
}

const TensorView& SafetensorsFile::tensor(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, "no tensor '" + name + "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

SafetensorsModel SafetensorsModel::open(const std::string& dir) {
  namespace fs = std::filesystem;
  SafetensorsModel model;
  model.dir_ = dir;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    model.files_.push_back(SafetensorsFile::open(single.string()));
    for (const auto& name : model.files_[0].names()) model.where_[name] = 0;
    return model;
  }
  if (!fs::exists(index))
    throw ModelFileError(dir + ": neither model.safetensors nor model.safetensors.index.json");
  nlohmann::json j;
  try {
    std::ifstream in(index);
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(index.string(), std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index.string(), "no 'weight_map' object");
  std::map<std::string, size_t> shard_index;
  for (const auto& [name, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) fail(index.string(), "weight_map['" + name + "'] is not a string");
    const std::string file = shard.get<std::string>();
    // Shards live in the folder: no paths that could reach outside it.
    if (file.empty() || file.find('/') != std::string::npos ||
        file.find('\\') != std::string::npos || file == "." || file == "..")
      fail(index.string(), "weight_map['" + name + "'] = '" + file + "' is not a file name");
    auto it = shard_index.find(file);
    if (it == shard_index.end()) {
      model.files_.push_back(SafetensorsFile::open((fs::path(dir) / file).string()));
      it = shard_index.emplace(file, model.files_.size() - 1).first;
    }
    if (!model.files_[it->second].contains(name))
      fail(model.files_[it->second].path(),
           "the index maps tensor '" + name + "' to this shard, which does not hold it");
    model.where_[name] = it->second;
  }
  return model;
}

namespace {}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || header.contains(t.name))
      throw InvalidArgument("write_safetensors: bad or repeated tensor name '" + t.name + "'");
    int64_t n = 1;
    for (int64_t d : t.shape) {
      if (d < 0) throw InvalidArgument("write_safetensors: negative dimension in '" + t.name + "'");
      n *= d;
    }
    if (n > 0 && t.values == nullptr && t.raw == nullptr)
      throw InvalidArgument("write_safetensors: no values for '" + t.name + "'");
    if (n > 0 && t.raw == nullptr && !is_float(t.dtype))
      throw InvalidArgument("write_safetensors: '" + t.name + "' is " + to_string(t.dtype) +
                            ": integer and bool tensors are written from raw bytes");
    const int64_t bytes = n * element_bytes(t.dtype);
    header[t.name] = {{"dtype", to_string(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data starts 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelFileError(path + ": cannot write");
  const uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
  out << text;
  for (const auto& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    if (t.raw != nullptr) {
      out.write(static_cast<const char*>(t.raw), n * element_bytes(t.dtype));
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      if (t.dtype == TensorDType::f32) {
        out.write(reinterpret_cast<const char*>(t.values + i), 4);
      } else if (t.dtype == TensorDType::f64) {
        const double d = t.values[i];
        out.write(reinterpret_cast<const char*>(&d), 8);
      } else {
        const uint16_t h = t.dtype == TensorDType::bf16 ? sparse::to_bf16(t.values[i])
                                                        : sparse::to_f16(t.values[i]);
        out.write(reinterpret_cast<const char*>(&h), 2);
      }
    }
  }
  if (!out.flush()) throw ModelFileError(path + ": write failed");
}

bool SafetensorsModel::contains(const std::string& name) const { return where_.count(name) != 0; }

void SafetensorsModel::release(const std::string& name) const {
  const auto it = where_.find(name);
  if (it != where_.end()) files_[it->second].release(files_[it->second].tensor(name));
}

const TensorView& SafetensorsModel::tensor(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) throw ModelFileError(dir_ + ": the model has no tensor '" + name + "'");
  return files_[it->second].tensor(name);
}

std::vector<std::string> SafetensorsModel::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

}  // namespace sparq
