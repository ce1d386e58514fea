// A decoder's activation-sparsity thresholds (DecoderOptions::input_thresholds) as the small JSON
// file `sparq-eval --calibrate` writes beside the model:
//   {"format": "sparq-input-thresholds", "version": 1, "target_sparsity": 0.4,
//    "calibration_text": "/usr/share/common-licenses/GPL-3", "calibration_tokens": 8192,
//    "layers": [{"qkv": 0.061, "o": 0.0032, "gate_up": 0.12, "down": 0.019}, ...]}
// One object per layer, in order; each threshold a finite number >= 0 (0: that input keeps
// every entry).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/llama_model.hpp"

namespace sparq::models {

struct InputThresholdsFile {
  std::vector<LayerInputThresholds> layers;
  double target_sparsity = 0;    // the fraction of each input below its threshold, calibrated
  std::string calibration_text;  // what it was calibrated on
  int64_t calibration_tokens = 0;
};

// ModelFileError naming the file for unreadable or malformed files, and for a layer count other
// than num_layers (the thresholds of another model; num_layers < 0: not checked here, the model
// checks it when built).
InputThresholdsFile load_input_thresholds(const std::string& path, int64_t num_layers);
void save_input_thresholds(const std::string& path, const InputThresholdsFile& thresholds);
// Sets options.input_thresholds to the file's and options.expected_input_sparsity to its
// calibration target.
void use_input_thresholds(DecoderOptions& options, const InputThresholdsFile& thresholds);
// Where calibration puts the file: <folder>/sparq_input_thresholds.json for a Hugging Face folder,
// <file>.sparq_input_thresholds.json beside a GGUF file.
std::string default_input_thresholds_path(const std::string& model_path);

struct CalibrationReport {
  InputThresholdsFile thresholds;
  // The fraction of each projection input below its threshold on held-out text (the chunks
  // after the calibration chunks), averaged over the layers; empty without held-out chunks.
  std::vector<double> held_out_sparsity;  // [ProjectionInput]
};

// Per layer and projection input, the threshold below which the fraction `target` of the
// input's entries lie on chunks [0, chunks) of `tokens` (chunks of ctx, run through `model`,
// which must have no thresholds of its own); then the sparsity those thresholds reach on the next
// held_out chunks.
CalibrationReport calibrate_input_thresholds(const LlamaModel& model,
                                             const std::vector<int32_t>& tokens, int64_t ctx,
                                             int64_t chunks, int64_t held_out, double target);

}  // namespace sparq::models
