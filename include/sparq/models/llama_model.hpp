// A Llama-family decoder whose linear layers run on sparq::SparseLinear: token embeddings,
// per layer RMSNorm -> grouped-query self-attention with rotary position embeddings and a
// key/value cache -> residual, RMSNorm -> SwiGLU MLP -> residual; final RMSNorm and the output
// head (tied to the embeddings or not). The query/key/value projections run as one stacked
// layer, gate and up as another; the residual adds are fused into the o and down projections.
// The embeddings stay dense fp32; the output head is dense, in the options' dtype.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparq/linear.hpp"
#include "sparq/models/llama_config.hpp"
#include "sparq/models/llama_weights.hpp"

namespace sparq::models {

// The inputs of a decoder layer's projections, each with its own activation-sparsity threshold:
// the attention input (query/key/value), the attention output (o), the MLP input (gate and up)
// and the down projection's input.
enum class ProjectionInput { qkv = 0, o = 1, gate_up = 2, down = 3 };
inline constexpr int kProjectionInputs = 4;
const char* to_string(ProjectionInput p);  // "qkv", "o", "gate_up", "down"

// One layer's thresholds (LinearOptions::input_threshold of its projections; 0: off), indexed by
// ProjectionInput.
struct LayerInputThresholds {
  float value[kProjectionInputs] = {0, 0, 0, 0};
  float& operator[](ProjectionInput p) { return value[static_cast<int>(p)]; }
  float operator[](ProjectionInput p) const { return value[static_cast<int>(p)]; }
};

struct DecoderOptions {
  DType dtype = DType::f32;                // of every attention and MLP linear layer
  Pattern pattern = Pattern::automatic();  // of every attention and MLP linear layer
  int threads = 0;                         // 0: all cores
  int pool = 0;  // the thread pool of every layer and stage (see LinearOptions::pool)
  // Activation sparsity in decode steps: empty (off), or one entry per layer (InvalidArgument
  // otherwise); see LinearOptions::input_threshold, and load_input_thresholds for the file
  // sparq-eval --calibrate writes.
  std::vector<LayerInputThresholds> input_thresholds = {};
  // The fraction of each input the thresholds zero (the calibration's target), passed to the
  // layers as LinearOptions::expected_input_sparsity: it decides whether decode steps skip the
  // zeroed inputs' weight columns or run the usual kernel on the zeroed inputs.
  float expected_input_sparsity = 0;
};

class LlamaModel;

// One sequence being decoded: its key/value cache and position. Feed it the prompt, then one
// token at a time. A session is not thread-safe; several sessions may run on one model at once.
class LlamaSession {
 public:
  LlamaSession(LlamaSession&&) noexcept;
  LlamaSession& operator=(LlamaSession&&) noexcept;
  ~LlamaSession();

  // Appends `ids` at the next positions and returns the logits [ids.size() x vocab] (all_logits)
  // or those of the last position only [vocab]. Throws InvalidArgument for ids outside the
  // vocabulary, an empty list, or a sequence longer than the session's capacity.
  std::vector<float> forward(const std::vector<int32_t>& ids, bool all_logits = false);
  // Calls `observer(layer, input, x, tokens, width)` with every projection input of the following
  // forward calls (x: [tokens x width], before any threshold; valid during the call only), e.g. to
  // calibrate input thresholds. An empty function stops it.
  using InputObserver =
      std::function<void(int64_t, ProjectionInput, const float*, int64_t, int64_t)>;
  void observe_inputs(InputObserver observer);
  int64_t position() const;  // tokens in the cache
  int64_t capacity() const;

 private:
  friend class LlamaModel;
  struct Impl;
  explicit LlamaSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class LlamaModel {
 public:
  // From a Hugging Face folder (config.json + safetensors) or a GGUF file (llama and qwen2
  // architectures; every encoding sparse/ggml_quants.hpp reads, dequantized, then packed like any
  // weight), the projections magnitude-pruned to `prune` at `sparsity` first (dense or 0: as
  // they are; see prune_projections). Layers are read, pruned and packed one at a time per thread.
  static LlamaModel load(const std::string& path, const DecoderOptions& options,
                         const Pattern& prune = Pattern::dense(), double sparsity = 0.0);
  static LlamaModel build(const LlamaConfig& config, const LlamaWeights& weights,
                          const DecoderOptions& options);
  // From a source of weights, a layer at a time (LlamaWeightSource), pruned as load does.
  static LlamaModel build(const LlamaConfig& config, const LlamaWeightSource& source,
                          const DecoderOptions& options, const Pattern& prune, double sparsity);

  LlamaModel(LlamaModel&&) noexcept;
  LlamaModel& operator=(LlamaModel&&) noexcept;
  ~LlamaModel();

  // A session whose cache holds up to `max_tokens` (<= the config's max_position). It shares
  // the model's packed weights, so it stays valid after the model object is gone.
  LlamaSession start(int64_t max_tokens) const;
  const LlamaConfig& config() const;
  // The kernel of each linear layer kind: query/key/value, attention output, up, gate (silu, * up),
  // down, output head.
  std::vector<std::pair<std::string, LinearInfo>> kernels() const;
  // Bytes the model holds: every layer's packed weights (LinearInfo::packed_bytes), the norms,
  // the fp32 embeddings and the output head (the embeddings again when tied).
  int64_t packed_bytes() const;

 private:
  friend class LlamaSession;
  struct Impl;
  explicit LlamaModel(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace sparq::models
