#include "src/gguf.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "sparq/error.hpp"
#include "src/mapped_file.hpp"

namespace sparq {

namespace {

// Far beyond real models, small enough that no product below overflows.
constexpr uint64_t kMaxCount = uint64_t{1} << 24;        // tensors, keys, array elements
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 24;  // one string
constexpr int64_t kMaxDim = int64_t{1} << 40, kMaxElements = int64_t{1} << 50;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kMaxAlignment = 1 << 16;

enum ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* value_type_name(uint32_t t) {
  static const char* const kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                       "int32",  "float32", "bool",   "string", "array",
                                       "uint64", "int64",   "float64"};
  return t < sizeof kNames / sizeof kNames[0] ? kNames[t] : "unknown";
}

// Reads little-endian fields from the mapped bytes; every read checks the bytes left, and the
// error names what was being read (`where`).
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size)
      : path_(path), data_(data), size_(size) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFileError(path_ + ": " + what);
  }
  uint64_t offset() const { return at_; }

  void need(uint64_t bytes, const std::string& where) const {
    if (bytes > size_ - at_)
      fail(where + " needs " + std::to_string(bytes) + " bytes at offset " + std::to_string(at_) +
           " but the file ends " + std::to_string(size_ - at_) + " bytes later (truncated?)");
  }
  template <typename T>
  T read(const std::string& where) {
    need(sizeof(T), where);
    T v;
    std::memcpy(&v, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& where) {
    const auto n = read<uint64_t>(where + " (length)");
    if (n > kMaxStringBytes)
      fail(where + ": a string of " + std::to_string(n) + " bytes (at most " +
           std::to_string(kMaxStringBytes) + " expected)");
    need(n, where);
    std::string s(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t at_ = 0;
};

GgufValue read_value(Cursor& c, uint32_t type, const std::string& where, bool in_array) {
  GgufValue v;
  v.type_id = type;
  switch (type) {
    case kUint8:
      v.kind = GgufValue::Kind::uint;
      v.u = c.read<uint8_t>(where);
      break;
    case kUint16:
      v.kind = GgufValue::Kind::uint;
      v.u = c.read<uint16_t>(where);
      break;
    case kUint32:
      v.kind = GgufValue::Kind::uint;
      v.u = c.read<uint32_t>(where);
      break;
    case kUint64:
      v.kind = GgufValue::Kind::uint;
      v.u = c.read<uint64_t>(where);
      break;
    case kInt8:
      v.kind = GgufValue::Kind::sint;
      v.i = c.read<int8_t>(where);
      break;
    case kInt16:
      v.kind = GgufValue::Kind::sint;
      v.i = c.read<int16_t>(where);
      break;
    case kInt32:
      v.kind = GgufValue::Kind::sint;
      v.i = c.read<int32_t>(where);
      break;
    case kInt64:
      v.kind = GgufValue::Kind::sint;
      v.i = c.read<int64_t>(where);
      break;
    case kFloat32:
      v.kind = GgufValue::Kind::real;
      v.f = c.read<float>(where);
      break;
    case kFloat64:
      v.kind = GgufValue::Kind::real;
      v.f = c.read<double>(where);
      break;
    case kBool: {
      v.kind = GgufValue::Kind::boolean;
      const auto b = c.read<uint8_t>(where);
      if (b > 1) c.fail(where + ": bool value " + std::to_string(b) + " (0 or 1 expected)");
      v.b = b != 0;
      break;
    }
    case kString:
      v.kind = GgufValue::Kind::string;
      v.s = c.string(where);
      break;
    case kArray: {
      if (in_array) c.fail(where + ": an array of arrays (sparq reads flat arrays)");
      v.kind = GgufValue::Kind::array;
      const auto elem = c.read<uint32_t>(where + " (array type)");
      if (elem > kFloat64 || elem == kArray)
        c.fail(where + ": array element type " + std::to_string(elem) +
               " (0..12, not array, expected)");
      const auto n = c.read<uint64_t>(where + " (array length)");
      if (n > kMaxCount)
        c.fail(where + ": an array of " + std::to_string(n) + " elements (at most " +
               std::to_string(kMaxCount) + " expected)");
      // Fixed-size elements: the whole array must fit before any is read.
      static const uint64_t kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
      if (kSizes[elem] > 0) c.need(n * kSizes[elem], where + " (array data)");
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, elem, where, true));
      break;
    }
    default:
      c.fail(where + ": value type " + std::to_string(type) + " (0..12 expected)");
  }
  return v;
}

}  // namespace

int64_t GgufTensor::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::vector<float> GgufTensor::to_f32() const {
  std::vector<float> out(static_cast<size_t>(elements()));
  sparse::dequantize(type, data, elements(), out.data());
  return out;
}

struct GgufFile::Mapping {
  MappedFile file;
};

void GgufFile::release(const GgufTensor& t) const {
  if (mapping_) mapping_->file.release(t.data, static_cast<uint64_t>(t.bytes));
}

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  GgufFile g;
  g.path_ = path;
  g.mapping_ = std::make_unique<Mapping>();
  g.mapping_->file = MappedFile::open(path);
  const uint8_t* base = g.mapping_->file.data();
  const uint64_t size = g.mapping_->file.size();
  Cursor c(g.path_, base, size);

  const auto magic = c.read<uint32_t>("the magic number");
  if (magic != 0x46554747u)  // "GGUF"
    c.fail("not a GGUF file (the first 4 bytes are not \"GGUF\")");
  g.version_ = c.read<uint32_t>("the version");
  if (g.version_ != 2 && g.version_ != 3)
    c.fail("GGUF version " + std::to_string(g.version_) + "; sparq reads versions 2 and 3");
  const auto tensor_count = c.read<uint64_t>("the tensor count");
  const auto kv_count = c.read<uint64_t>("the metadata count");
  if (tensor_count > kMaxCount || kv_count > kMaxCount)
    c.fail(std::to_string(tensor_count) + " tensors and " + std::to_string(kv_count) +
           " metadata keys (at most " + std::to_string(kMaxCount) + " each expected)");

  for (uint64_t k = 0; k < kv_count; ++k) {
    const std::string where = "metadata entry " + std::to_string(k);
    std::string key = c.string(where + " (key)");
    const auto type = c.read<uint32_t>("key '" + key + "' (type)");
    GgufValue v = read_value(c, type, "key '" + key + "'", false);
    if (!g.metadata_.emplace(key, std::move(v)).second) c.fail("key '" + key + "' appears twice");
  }
  if (g.has("general.alignment")) {
    const GgufValue& a = g.value("general.alignment");
    if (a.kind != GgufValue::Kind::uint || a.u == 0 || a.u > kMaxAlignment || (a.u & (a.u - 1)))
      c.fail("general.alignment must be a power of two up to " + std::to_string(kMaxAlignment));
    g.alignment_ = a.u;
  }

  struct Info {
    std::string name;
    uint64_t offset;
  };
  std::vector<Info> infos;
  for (uint64_t t = 0; t < tensor_count; ++t) {
    GgufTensor tensor;
    tensor.name = c.string("tensor info " + std::to_string(t) + " (name)");
    const std::string where = "tensor '" + tensor.name + "'";
    const auto n_dims = c.read<uint32_t>(where + " (dimension count)");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail(where + ": " + std::to_string(n_dims) + " dimensions (1.." + std::to_string(kMaxDims) +
             " expected)");
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = c.read<uint64_t>(where + " (dimensions)");
      if (dim == 0 || dim > static_cast<uint64_t>(kMaxDim))
        c.fail(where + ": dimension " + std::to_string(dim) + " (1..2^40 expected)");
      if (elements > kMaxElements / static_cast<int64_t>(dim))
        c.fail(where + ": more than 2^50 elements");
      tensor.dims.push_back(static_cast<int64_t>(dim));
      elements *= static_cast<int64_t>(dim);
    }
    tensor.type_id = c.read<uint32_t>(where + " (type)");
    const auto type = sparse::ggml_type_from_id(tensor.type_id);
    if (!type)
      c.fail(where + " is " + sparse::ggml_type_name(tensor.type_id) + "; sparq reads " +
             sparse::ggml_readable_types());
    tensor.type = *type;
    const int64_t block = sparse::ggml_block_elements(tensor.type);
    if (tensor.dims[0] % block != 0)
      c.fail(where + ": rows of " + std::to_string(tensor.dims[0]) + " elements are not whole " +
             sparse::ggml_type_name(tensor.type_id) + " blocks of " + std::to_string(block));
    tensor.bytes = elements / block * sparse::ggml_block_bytes(tensor.type);
    const auto offset = c.read<uint64_t>(where + " (offset)");
    if (offset % g.alignment_ != 0)
      c.fail(where + ": data offset " + std::to_string(offset) + " is not a multiple of the " +
             std::to_string(g.alignment_) + "-byte alignment");
    if (g.tensors_.count(tensor.name)) c.fail(where + " appears twice");
    infos.push_back({tensor.name, offset});
    g.order_.push_back(tensor.name);
    g.tensors_.emplace(tensor.name, std::move(tensor));
  }

  // The data starts at the first aligned offset after the tensor infos.
  const uint64_t data_start = (c.offset() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  if (data_start > size && tensor_count > 0)
    c.fail("the tensor data would start at " + std::to_string(data_start) +
           ", past the end of the file (" + std::to_string(size) + " bytes)");
  const uint64_t data_bytes = data_start <= size ? size - data_start : 0;
  std::vector<std::pair<uint64_t, std::string>> extents;
  for (const Info& info : infos) {
    GgufTensor& t = g.tensors_.at(info.name);
    const auto bytes = static_cast<uint64_t>(t.bytes);
    if (info.offset > data_bytes || bytes > data_bytes - info.offset)
      c.fail("tensor '" + t.name + "': " + std::to_string(bytes) + " bytes at data offset " +
             std::to_string(info.offset) + " reach past the end of the data (" +
             std::to_string(data_bytes) + " bytes): the file is truncated or the header lies");
    t.data = base + data_start + info.offset;
    extents.emplace_back(info.offset, t.name);
  }
  std::sort(extents.begin(), extents.end());
  for (size_t k = 1; k < extents.size(); ++k) {
    const GgufTensor& prev = g.tensors_.at(extents[k - 1].second);
    if (extents[k].first < extents[k - 1].first + static_cast<uint64_t>(prev.bytes))
      c.fail("tensors '" + prev.name + "' and '" + extents[k].second + "' overlap in the data");
  }
  return g;
}

const GgufValue& GgufFile::value(const std::string& key) const {
  const auto it = metadata_.find(key);
  if (it == metadata_.end()) throw ModelFileError(path_ + ": no metadata key '" + key + "'");
  return it->second;
}

namespace {

[[noreturn]] void wrong_kind(const std::string& path, const std::string& key, const GgufValue& v,
                             const char* expected) {
  throw ModelFileError(
      path + ": key '" + key + "' is " + value_type_name(v.type_id) +
      (v.kind == GgufValue::Kind::array
           ? std::string(" array of ") +
                 (v.array.empty() ? "nothing" : value_type_name(v.array[0].type_id))
           : "") +
      "; " + expected + " expected");
}

}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.kind != GgufValue::Kind::string) wrong_kind(path_, key, v, "a string");
  return v.s;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.kind == GgufValue::Kind::uint) return v.u;
  if (v.kind == GgufValue::Kind::sint && v.i >= 0) return static_cast<uint64_t>(v.i);
  wrong_kind(path_, key, v, "a non-negative integer");
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = value(key);
  if (v.kind == GgufValue::Kind::real) return v.f;
  if (v.kind == GgufValue::Kind::uint) return static_cast<double>(v.u);
  if (v.kind == GgufValue::Kind::sint) return static_cast<double>(v.i);
  wrong_kind(path_, key, v, "a number");
}

std::vector<std::string> GgufFile::get_strings(const std::string& key) const {
  const GgufValue& v = value(key);
  std::vector<std::string> out;
  if (v.kind != GgufValue::Kind::array) wrong_kind(path_, key, v, "an array of strings");
  for (const GgufValue& e : v.array) {
    if (e.kind != GgufValue::Kind::string) wrong_kind(path_, key, v, "an array of strings");
    out.push_back(e.s);
  }
  return out;
}

std::vector<double> GgufFile::get_floats(const std::string& key) const {
  const GgufValue& v = value(key);
  std::vector<double> out;
  if (v.kind != GgufValue::Kind::array) wrong_kind(path_, key, v, "an array of numbers");
  for (const GgufValue& e : v.array) {
    if (e.kind == GgufValue::Kind::real)
      out.push_back(e.f);
    else if (e.kind == GgufValue::Kind::uint)
      out.push_back(static_cast<double>(e.u));
    else if (e.kind == GgufValue::Kind::sint)
      out.push_back(static_cast<double>(e.i));
    else
      wrong_kind(path_, key, v, "an array of numbers");
  }
  return out;
}

std::vector<int64_t> GgufFile::get_ints(const std::string& key) const {
  const GgufValue& v = value(key);
  std::vector<int64_t> out;
  if (v.kind != GgufValue::Kind::array) wrong_kind(path_, key, v, "an array of integers");
  for (const GgufValue& e : v.array) {
    if (e.kind == GgufValue::Kind::sint)
      out.push_back(e.i);
    else if (e.kind == GgufValue::Kind::uint && e.u <= static_cast<uint64_t>(INT64_MAX))
      out.push_back(static_cast<int64_t>(e.u));
    else
      wrong_kind(path_, key, v, "an array of integers");
  }
  return out;
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  const auto it = tensors_.find(name);
  if (it == tensors_.end()) throw ModelFileError(path_ + ": no tensor '" + name + "'");
  return it->second;
}

std::vector<std::string> GgufFile::tensor_names() const { return order_; }

namespace {

void put(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void put(std::string& out, T v) {
  put(out, &v, sizeof v);
}
void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void put_value(std::string& out, const GgufValue& v, bool with_type) {
  if (with_type) put<uint32_t>(out, v.type_id);
  auto expect = [&](GgufValue::Kind kind) {
    if (v.kind != kind)
      throw InvalidArgument("write_gguf: a " + std::string(value_type_name(v.type_id)) +
                            " value of another kind");
  };
  switch (v.type_id) {
    case kUint8:
      expect(GgufValue::Kind::uint);
      put<uint8_t>(out, static_cast<uint8_t>(v.u));
      break;
    case kUint16:
      expect(GgufValue::Kind::uint);
      put<uint16_t>(out, static_cast<uint16_t>(v.u));
      break;
    case kUint32:
      expect(GgufValue::Kind::uint);
      put<uint32_t>(out, static_cast<uint32_t>(v.u));
      break;
    case kUint64:
      expect(GgufValue::Kind::uint);
      put<uint64_t>(out, v.u);
      break;
    case kInt8:
      expect(GgufValue::Kind::sint);
      put<int8_t>(out, static_cast<int8_t>(v.i));
      break;
    case kInt16:
      expect(GgufValue::Kind::sint);
      put<int16_t>(out, static_cast<int16_t>(v.i));
      break;
    case kInt32:
      expect(GgufValue::Kind::sint);
      put<int32_t>(out, static_cast<int32_t>(v.i));
      break;
    case kInt64:
      expect(GgufValue::Kind::sint);
      put<int64_t>(out, v.i);
      break;
    case kFloat32:
      expect(GgufValue::Kind::real);
      put<float>(out, static_cast<float>(v.f));
      break;
    case kFloat64:
      expect(GgufValue::Kind::real);
      put<double>(out, v.f);
      break;
    case kBool:
      expect(GgufValue::Kind::boolean);
      put<uint8_t>(out, v.b ? 1 : 0);
      break;
    case kString:
      expect(GgufValue::Kind::string);
      put_string(out, v.s);
      break;
    case kArray: {
      expect(GgufValue::Kind::array);
      const uint32_t elem = v.array.empty() ? kUint8 : v.array.front().type_id;
      put<uint32_t>(out, elem);
      put<uint64_t>(out, v.array.size());
      for (const GgufValue& e : v.array) {
        if (e.type_id != elem) throw InvalidArgument("write_gguf: an array of mixed types");
        put_value(out, e, false);
      }
      break;
    }
    default:
      throw InvalidArgument("write_gguf: value type " + std::to_string(v.type_id));
  }
}

}  // namespace

void write_gguf(const std::string& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors) {
  constexpr uint64_t kAlign = 32;
  std::string head;
  put<uint32_t>(head, 0x46554747u);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors.size());
  put<uint64_t>(head, metadata.size());
  for (const auto& [key, value] : metadata) {
    put_string(head, key);
    put_value(head, value, true);
  }
  uint64_t offset = 0;
  for (const GgufTensorToWrite& t : tensors) {
    if (t.dims.empty() || t.dims.size() > kMaxDims || !t.values)
      throw InvalidArgument("write_gguf: tensor '" + t.name + "' needs 1..4 dims and values");
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    int64_t n = 1;
    for (int64_t d : t.dims) {
      put<uint64_t>(head, static_cast<uint64_t>(d));
      n *= d;
    }
    put<uint32_t>(head, 0);  // F32
    put<uint64_t>(head, offset);
    offset += (static_cast<uint64_t>(n) * 4 + kAlign - 1) / kAlign * kAlign;
  }
  head.append((kAlign - head.size() % kAlign) % kAlign, '\0');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelFileError(path + ": cannot write");
  out << head;
  for (const GgufTensorToWrite& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.dims) n *= d;
    const auto bytes = static_cast<uint64_t>(n) * 4;
    out.write(reinterpret_cast<const char*>(t.values), static_cast<std::streamsize>(bytes));
    const std::string pad((kAlign - bytes % kAlign) % kAlign, '\0');
    out << pad;
  }
  if (!out.flush()) throw ModelFileError(path + ": write failed");
}

GgufValue gguf_string(std::string s) {
  GgufValue v;
  v.kind = GgufValue::Kind::string;
  v.type_id = kString;
  v.s = std::move(s);
  return v;
}

GgufValue gguf_uint32(uint32_t x) {
  GgufValue v;
  v.kind = GgufValue::Kind::uint;
  v.type_id = kUint32;
  v.u = x;
  return v;
}

GgufValue gguf_float32(float x) {
  GgufValue v;
  v.kind = GgufValue::Kind::real;
  v.type_id = kFloat32;
  v.f = x;
  return v;
}

GgufValue gguf_float32s(const std::vector<float>& list) {
  GgufValue v;
  v.kind = GgufValue::Kind::array;
  v.type_id = kArray;
  for (float x : list) v.array.push_back(gguf_float32(x));
  return v;
}

GgufValue gguf_bool(bool x) {
  GgufValue v;
  v.kind = GgufValue::Kind::boolean;
  v.type_id = kBool;
  v.b = x;
  return v;
}

GgufValue gguf_int32s(const std::vector<int32_t>& list) {
  GgufValue v;
  v.kind = GgufValue::Kind::array;
  v.type_id = kArray;
  for (int32_t x : list) {
    GgufValue e;
    e.kind = GgufValue::Kind::sint;
    e.type_id = kInt32;
    e.i = x;
    v.array.push_back(e);
  }
  return v;
}

GgufValue gguf_strings(const std::vector<std::string>& list) {
  GgufValue v;
  v.kind = GgufValue::Kind::array;
  v.type_id = kArray;
  for (const auto& s : list) v.array.push_back(gguf_string(s));
  return v;
}

}  // namespace sparq
