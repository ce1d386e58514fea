// A reader of the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length, a JSON header mapping tensor names to {dtype, shape,
// data_offsets}, then the raw bytes. The file is memory-mapped read-only; every dtype, shape and
// offset is checked against the file before any byte is read, since model files are untrusted.
// Also reads sharded checkpoints through model.safetensors.index.json.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sparq {

// Every dtype of the format but the 8-bit floats. Weights must be float (F64, F32, F16, BF16);
// integer and bool tensors (position_ids buffers, for one) are read, checked and passed through.
enum class TensorDType { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };
const char* to_string(TensorDType dtype);
int element_bytes(TensorDType dtype);
bool is_float(TensorDType dtype);

// A tensor inside a mapped file: valid as long as the file object lives.
struct TensorView {
  std::string name;
  TensorDType dtype = TensorDType::f32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // not aligned in general
  int64_t bytes = 0;

  int64_t elements() const;
  // The values as fp32 (F16 and BF16 widened exactly, F64 rounded). Throws ModelFileError naming
  // the tensor when its dtype is not a float one.
  std::vector<float> to_f32() const;
};

class SafetensorsFile {
 public:
  // Throws ModelFileError naming the file (and tensor) for a missing, truncated or malformed file.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws ModelFileError naming the file and tensor when it is missing.
  const TensorView& tensor(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's bytes may leave resident memory (MappedFile::release): call once converted.
  void release(const TensorView& tensor) const;

 private:
  SafetensorsFile() = default;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::string path_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: fp32 values stored as `dtype` (F16/BF16 rounded to nearest even, F64
// widened), or, when `raw` is set, product(shape) elements already in `dtype`, copied as they
// are (the only way to write integer and bool tensors).
struct TensorToWrite {
  std::string name;
  TensorDType dtype = TensorDType::f32;
  std::vector<int64_t> shape;
  const float* values = nullptr;  // product(shape) values
  const void* raw = nullptr;
};

// Writes a safetensors file (tensors laid out in the given order, 8-byte aligned header).
// Throws ModelFileError when the file cannot be written, InvalidArgument for a bad tensor list.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// All tensors of a Hugging Face folder: model.safetensors, or the shards listed in
// model.safetensors.index.json.
class SafetensorsModel {
 public:
  static SafetensorsModel open(const std::string& dir);
  bool contains(const std::string& name) const;
  const TensorView& tensor(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& dir() const { return dir_; }
  // The named tensor's bytes may leave resident memory (MappedFile::release).
  void release(const std::string& name) const;

 private:
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

}  // namespace sparq
