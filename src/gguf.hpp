// A reader of GGUF files (llama.cpp's model format, versions 2 and 3): header, typed key/value
// metadata (numbers, bools, strings and arrays of them, the tokenizer's vocabulary included),
// tensor infos and the aligned tensor data. The file is memory-mapped read-only and, since model
// files are untrusted, every count, length, dimension, type and offset is checked against the
// file before anything is read: a malformed file gives ModelFileError naming the file, the key or
// tensor, and what was expected.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sparse/ggml_quants.hpp"

namespace sparq {

// A metadata value. Arrays hold their elements; a value's kind decides which member is set.
struct GgufValue {
  enum class Kind { uint, sint, real, boolean, string, array };
  Kind kind = Kind::uint;
  uint32_t type_id = 0;  // the GGUF value type (GGUF_TYPE_UINT8 = 0 ... FLOAT64 = 12)
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<GgufValue> array;
};

// A tensor inside the mapped file: valid as long as the file object lives. dims are in ggml
// order: dims[0] is the fastest-varying (row length), so a [rows x cols] matrix has
// dims = {cols, rows}.
struct GgufTensor {
  std::string name;
  uint32_t type_id = 0;
  sparse::GgmlType type = sparse::GgmlType::f32;
  std::vector<int64_t> dims;
  const uint8_t* data = nullptr;
  int64_t bytes = 0;

  int64_t elements() const;
  std::vector<float> to_f32() const;  // dequantized
};

class GgufFile {
 public:
  // Throws ModelFileError naming the file (and key or tensor) for a missing, truncated or
  // malformed file, and for tensor types sparq does not read (named, e.g. "Q4_K").
  static GgufFile open(const std::string& path);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  ~GgufFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  // Throw ModelFileError naming the file and key when the key is missing or of another kind.
  const GgufValue& value(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;  // any integer type, non-negative
  double get_float(const std::string& key) const;   // float or integer types
  std::vector<std::string> get_strings(const std::string& key) const;
  std::vector<double> get_floats(const std::string& key) const;
  std::vector<int64_t> get_ints(const std::string& key) const;
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  const GgufTensor& tensor(const std::string& name) const;
  // The tensor's bytes may leave resident memory (MappedFile::release): call once converted.
  void release(const GgufTensor& tensor) const;
  std::vector<std::string> tensor_names() const;  // in file order

 private:
  GgufFile() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::string path_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufValue> metadata_;
  std::map<std::string, GgufTensor> tensors_;
  std::vector<std::string> order_;
};

// A tensor to write: fp32 values stored as F32, dims in ggml order.
struct GgufTensorToWrite {
  std::string name;
  std::vector<int64_t> dims;
  const float* values = nullptr;
};

// Writes a version-3 GGUF file: the metadata (each value encoded as its type_id says; arrays
// take their elements' type from the first element), then the tensors, 32-byte aligned.
// Throws ModelFileError when the file cannot be written, InvalidArgument for a value whose
// type_id disagrees with its kind.
void write_gguf(const std::string& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<GgufTensorToWrite>& tensors);

// Metadata values, for writing.
GgufValue gguf_string(std::string s);
GgufValue gguf_uint32(uint32_t v);
GgufValue gguf_float32(float v);
GgufValue gguf_strings(const std::vector<std::string>& v);
GgufValue gguf_int32s(const std::vector<int32_t>& v);
GgufValue gguf_float32s(const std::vector<float>& v);
GgufValue gguf_bool(bool v);

}  // namespace sparq
