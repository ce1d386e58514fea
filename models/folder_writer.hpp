// Writing a model as a Hugging Face folder (config.json + model.safetensors), shared by the
// encoder's and the decoder's savers: tensors are collected with their shapes checked against
// the config, then written together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/safetensors.hpp"

namespace sparq::models {

class FolderWriter {
 public:
  // `caller` names the saver in errors; InvalidArgument when `dtype` is not a float dtype.
  FolderWriter(std::string caller, TensorDType dtype);

  // Adds a tensor (the values are not copied: they must outlive write()); InvalidArgument when
  // their count disagrees with the shape.
  void add(const std::string& name, const std::vector<float>& values, std::vector<int64_t> shape);

  // Creates `dir` if needed and writes config.json (the text given) and model.safetensors;
  // ModelFileError when the folder cannot be written.
  void write(const std::string& dir, const std::string& config_json) const;

 private:
  std::string caller_;
  TensorDType dtype_;
  std::vector<TensorToWrite> tensors_;
};

}  // namespace sparq::models
