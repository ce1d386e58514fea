#include "models/prune_folder.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "sparq/error.hpp"
#include "sparse/prune.hpp"
#include "sparse/stats.hpp"
#include "src/safetensors.hpp"

namespace sparq::models {

std::string default_prune_regex(const std::string& dir) {
  const auto config = std::filesystem::path(dir) / "config.json";
  if (std::filesystem::exists(config)) {
    try {
      const auto j = nlohmann::json::parse(std::ifstream(config));
      const std::string type = j.is_object() ? j.value("model_type", "") : "";
      if (type == "llama" || type == "mistral") return kDecoderLinearRegex;
    } catch (const nlohmann::json::exception&) {
      // not JSON: the encoder default; loading the folder reports what is wrong with it
    }
  }
  return kEncoderLinearRegex;
}

std::vector<PrunedTensor> prune_folder(const std::string& in_dir, const std::string& out_dir,
                                       const Pattern& pattern, double sparsity,
                                       const std::string& layers) {
  namespace fs = std::filesystem;
  if (!(sparsity >= 0.0 && sparsity < 1.0))
    throw InvalidArgument("prune: sparsity must be in [0, 1), got " + std::to_string(sparsity));
  std::regex select;
  try {
    select = std::regex(layers);
  } catch (const std::regex_error& e) {
    throw InvalidArgument("prune: bad --layers regex '" + layers + "': " + e.what());
  }
  std::error_code ec;
  if (fs::exists(out_dir) && fs::equivalent(in_dir, out_dir, ec))
    throw InvalidArgument("prune: the output folder is the input folder");
  const SafetensorsModel model = SafetensorsModel::open(in_dir);
  fs::create_directories(out_dir, ec);
  if (ec) throw ModelFileError(out_dir + ": cannot create: " + ec.message());

  std::vector<PrunedTensor> report;
  std::vector<std::vector<float>> values;  // kept alive until written
  std::vector<TensorToWrite> tensors;
  const auto names = model.names();
  values.reserve(names.size());
  for (const auto& name : names) {
    const TensorView& t = model.tensor(name);
    if (!is_float(t.dtype)) {  // integer buffers (position_ids) pass through byte for byte
      tensors.push_back({name, t.dtype, t.shape, nullptr, t.data});
      continue;
    }
    values.push_back(t.to_f32());
    std::vector<float>& v = values.back();
    if (std::regex_search(name, select) && t.shape.size() == 2 && t.elements() > 0) {
      const int64_t rows = t.shape[0], cols = t.shape[1];
      v = sparse::prune(v, rows, cols, pattern, sparsity);
      PrunedTensor p{name, rows, cols, sparse::sparsity(v), 0.0};
      if (pattern.kind == Pattern::Kind::block)
        p.block_sparsity = sparse::block_sparsity(v, rows, cols, pattern.block);
      report.push_back(p);
    }
    tensors.push_back({name, t.dtype, t.shape, v.data()});
  }
  write_safetensors((fs::path(out_dir) / "model.safetensors").string(), tensors,
                    {{"format", "pt"}, {"pruned_by", "sparq"}});
  // The other files of the folder (config, tokenizer): the weights are now one file.
  for (const auto& entry : fs::directory_iterator(in_dir)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() == ".safetensors" ||
        file == "model.safetensors.index.json")
      continue;
    fs::copy_file(entry.path(), fs::path(out_dir) / file, fs::copy_options::overwrite_existing, ec);
    if (ec) throw ModelFileError(out_dir + ": cannot copy " + file + ": " + ec.message());
  }
  return report;
}

}  // namespace sparq::models
