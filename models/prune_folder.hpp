// Magnitude pruning of a Hugging Face model folder: every tensor whose name matches `layers`
// (default: the encoder's linear weights; sparq-prune picks default_prune_regex) is pruned to the
// pattern and sparsity; everything is written to `out_dir` as one model.safetensors in the tensors'
// own dtypes, and the folder's other files (config.json, vocab.txt, tokenizer files) are copied.
// Used by sparq-prune.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/types.hpp"

namespace sparq::models {

// Encoder linear weights of BERT and DistilBERT checkpoints (embeddings and pooler excluded).
inline const char* kEncoderLinearRegex =
    R"((^|\.)(encoder\.layer|transformer\.layer)\.[0-9]+\..*(query|key|value|dense|q_lin|k_lin|v_lin|out_lin|lin1|lin2)\.weight$)";

// Attention and MLP projections of Llama-family checkpoints (embeddings and lm_head excluded).
inline const char* kDecoderLinearRegex =
    R"((^|\.)layers\.[0-9]+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.weight$)";

// The default selection for a folder: the decoder projections when its config.json says
// model_type llama or mistral, else the encoder linears.
std::string default_prune_regex(const std::string& dir);

struct PrunedTensor {
  std::string name;
  int64_t rows = 0, cols = 0;
  double sparsity = 0;        // achieved fraction of zeros
  double block_sparsity = 0;  // fraction of all-zero blocks of the pattern (block patterns)
};

// pattern: a block pattern, N:M, or dense/automatic for unstructured pruning. Throws
// ModelFileError for unreadable input or unwritable output, InvalidArgument for a bad regex,
// sparsity outside [0, 1), or an output folder equal to the input.
std::vector<PrunedTensor> prune_folder(const std::string& in_dir, const std::string& out_dir,
                                       const Pattern& pattern, double sparsity,
                                       const std::string& layers = kEncoderLinearRegex);

}  // namespace sparq::models
