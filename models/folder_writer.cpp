#include "models/folder_writer.hpp"

#include <filesystem>
#include <fstream>

#include "sparq/error.hpp"

namespace sparq::models {

FolderWriter::FolderWriter(std::string caller, TensorDType dtype)
    : caller_(std::move(caller)), dtype_(dtype) {
  if (!is_float(dtype))
    throw InvalidArgument(caller_ + ": weights cannot be stored as " + to_string(dtype));
}

void FolderWriter::add(const std::string& name, const std::vector<float>& values,
                       std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (static_cast<int64_t>(values.size()) != n)
    throw InvalidArgument(caller_ + ": '" + name + "' has " + std::to_string(values.size()) +
                          " values; the config's shape needs " + std::to_string(n));
  tensors_.push_back({name, dtype_, std::move(shape), values.data()});
}

void FolderWriter::write(const std::string& dir, const std::string& config_json) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw ModelFileError(dir + ": cannot create: " + ec.message());
  const fs::path config_path = fs::path(dir) / "config.json";
  std::ofstream config(config_path);
  config << config_json;
  if (!config.flush()) throw ModelFileError(config_path.string() + ": cannot write");
  write_safetensors((fs::path(dir) / "model.safetensors").string(), tensors_,
                    {{"format", "pt"}, {"saved_by", "sparq"}});
}

}  // namespace sparq::models
