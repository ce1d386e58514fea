#include "sparq/models/input_thresholds.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/config_json.hpp"
#include "sparq/error.hpp"
#include "sparse/checks.hpp"

namespace sparq::models {

using sparse::require;

const char* to_string(ProjectionInput p) {
  switch (p) {
    case ProjectionInput::qkv:
      return "qkv";
    case ProjectionInput::o:
      return "o";
    case ProjectionInput::gate_up:
      return "gate_up";
    case ProjectionInput::down:
      return "down";
  }
  return "?";
}

namespace {
constexpr const char* kFormat = "sparq-input-thresholds";
constexpr ProjectionInput kInputs[] = {ProjectionInput::qkv, ProjectionInput::o,
                                       ProjectionInput::gate_up, ProjectionInput::down};
}  // namespace

InputThresholdsFile load_input_thresholds(const std::string& path, int64_t num_layers) {
  namespace cj = config_json;
  const nlohmann::json j = cj::parse_object(cj::read_file(path), path);
  return cj::guarded(path, [&] {
    if (j.value("format", std::string()) != kFormat)
      cj::fail(path, std::string("\"format\" must be \"") + kFormat + "\"");
    if (!j.contains("version") || !j["version"].is_number_integer() || j["version"] != 1)
      cj::fail(path, "\"version\" must be 1");
    if (!j.contains("layers") || !j["layers"].is_array())
      cj::fail(path, "\"layers\" must be an array with one object per layer");
    const auto& layers = j["layers"];
    if (num_layers >= 0 && static_cast<int64_t>(layers.size()) != num_layers)
      cj::fail(path, "it holds thresholds for " + std::to_string(layers.size()) +
                         " layers; the model has " + std::to_string(num_layers));
    InputThresholdsFile t;
    t.target_sparsity = cj::number(j, "target_sparsity", path, -1e-9, 1.0, 0.0);
    t.calibration_text = j.value("calibration_text", std::string());
    t.calibration_tokens = j.value("calibration_tokens", int64_t{0});
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& o = layers[l];
      if (!o.is_object()) cj::fail(path, "layers[" + std::to_string(l) + "] is not an object");
      LayerInputThresholds lt;
      for (ProjectionInput p : kInputs) {
        const std::string where = "layers[" + std::to_string(l) + "]." + to_string(p);
        if (!o.contains(to_string(p)) || !o[to_string(p)].is_number())
          cj::fail(path, where + " must be a number");
        const double v = o[to_string(p)].get<double>();
        if (!std::isfinite(v) || v < 0 || v > 3.0e38)
          cj::fail(path, where + " must be a finite number >= 0, got " + std::to_string(v));
        lt[p] = static_cast<float>(v);
      }
      t.layers.push_back(lt);
    }
    return t;
  });
}

void save_input_thresholds(const std::string& path, const InputThresholdsFile& t) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerInputThresholds& lt : t.layers) {
    nlohmann::json o;
    for (ProjectionInput p : kInputs) o[to_string(p)] = lt[p];
    layers.push_back(o);
  }
  const nlohmann::json j = {{"format", kFormat},
                            {"version", 1},
                            {"target_sparsity", t.target_sparsity},
                            {"calibration_text", t.calibration_text},
                            {"calibration_tokens", t.calibration_tokens},
                            {"layers", layers}};
  std::ofstream out(path);
  out << j.dump(1) << "\n";
  if (!out) throw ModelFileError(path + ": could not write the input thresholds");
}

void use_input_thresholds(DecoderOptions& options, const InputThresholdsFile& thresholds) {
  options.input_thresholds = thresholds.layers;
  options.expected_input_sparsity = static_cast<float>(thresholds.target_sparsity);
}

std::string default_input_thresholds_path(const std::string& model_path) {
  if (std::filesystem::is_directory(model_path))
    return (std::filesystem::path(model_path) / "sparq_input_thresholds.json").string();
  return model_path + ".sparq_input_thresholds.json";
}

CalibrationReport calibrate_input_thresholds(const LlamaModel& model,
                                             const std::vector<int32_t>& tokens, int64_t ctx,
                                             int64_t chunks, int64_t held_out, double target) {
  if (!(target > 0 && target < 1))
    throw InvalidArgument(
        "calibrate_input_thresholds: the target activation sparsity must be in (0, 1), got " +
        std::to_string(target));
  require(ctx >= 4, "calibrate_input_thresholds: ctx must be at least 4 tokens");
  const int64_t available = static_cast<int64_t>(tokens.size()) / ctx;
  chunks = std::min(chunks, available);
  if (chunks < 1)
    throw InvalidArgument("calibrate_input_thresholds: the text has " +
                          std::to_string(tokens.size()) + " tokens, fewer than one chunk of " +
                          std::to_string(ctx));
  held_out = std::max<int64_t>(0, std::min(held_out, available - chunks));
  const int64_t layers = model.config().num_layers;
  constexpr int kInputs = kProjectionInputs;
  // A strided sample of each input's magnitudes: at most ~64 K values per (layer, input).
  constexpr int64_t kSample = 1 << 16;
  std::vector<std::vector<float>> samples(static_cast<size_t>(layers * kInputs));
  auto run = [&](int64_t c, const LlamaSession::InputObserver& observer) {
    auto session = model.start(ctx);
    session.observe_inputs(observer);
    session.forward(std::vector<int32_t>(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx));
  };
  for (int64_t c = 0; c < chunks; ++c)
    run(c, [&](int64_t l, ProjectionInput p, const float* x, int64_t n, int64_t width) {
      auto& s = samples[static_cast<size_t>(l * kInputs + static_cast<int>(p))];
      const int64_t total = chunks * ctx * width, stride = std::max<int64_t>(1, total / kSample);
      for (int64_t i = (c * 7919) % stride; i < n * width; i += stride)
        s.push_back(std::fabs(x[i]));
    });
  CalibrationReport r;
  r.thresholds.target_sparsity = target;
  r.thresholds.calibration_tokens = chunks * ctx;
  r.thresholds.layers.resize(static_cast<size_t>(layers));
  for (int64_t l = 0; l < layers; ++l)
    for (int p = 0; p < kInputs; ++p) {
      auto& s = samples[static_cast<size_t>(l * kInputs + p)];
      const auto k = static_cast<size_t>(target * static_cast<double>(s.size()));
      std::nth_element(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
      // Entries strictly below the threshold are zeroed: the k-th smallest leaves k below.
      r.thresholds.layers[static_cast<size_t>(l)].value[p] = s[k];
    }
  if (held_out == 0) return r;
  std::vector<double> below(kInputs, 0.0), seen(kInputs, 0.0);
  for (int64_t c = chunks; c < chunks + held_out; ++c)
    run(c, [&](int64_t l, ProjectionInput p, const float* x, int64_t n, int64_t width) {
      const float t = r.thresholds.layers[static_cast<size_t>(l)][p];
      int64_t count = 0;
      for (int64_t i = 0; i < n * width; ++i) count += std::fabs(x[i]) < t;
      below[static_cast<size_t>(p)] += double(count);
      seen[static_cast<size_t>(p)] += double(n * width);
    });
  for (int p = 0; p < kInputs; ++p) r.held_out_sparsity.push_back(below[p] / seen[p]);
  return r;
}

}  // namespace sparq::models
