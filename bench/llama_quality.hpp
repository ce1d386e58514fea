// sparq-eval for decoders, quality side: perplexity over a text (llama.cpp's `perplexity`
// convention).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/llama_model.hpp"
#include "sparq/models/tokenizer.hpp"

namespace sparq::bench {

// The files' texts, joined by blank lines, as token ids (no BOS). InvalidArgument for an
// unreadable file.
std::vector<int32_t> text_tokens(const std::vector<std::string>& files,
                                 const models::Tokenizer& tokenizer);

struct PerplexityReport {
  double perplexity = 0;
  int64_t chunks = 0, scored_tokens = 0;
  double seconds = 0;         // the model's forward calls
  bool decode_steps = false;  // fed one token at a time (where input thresholds act)
};

// llama.cpp's perplexity: the tokens in consecutive chunks of ctx, each chunk run from an empty
// cache; the negative log-likelihood of each token of the chunk's second half given everything
// before it in the chunk; exp of the mean. At most max_chunks chunks (0: all that fit).
// decode_steps: each chunk fed one token at a time (the decode path), else in one call.
PerplexityReport perplexity(const models::LlamaModel& model, const std::vector<int32_t>& tokens,
                            int64_t ctx, int64_t max_chunks, bool decode_steps);

}  // namespace sparq::bench
