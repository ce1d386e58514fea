// sparq-eval for encoders, quality side: how close a pruned (and quantized) encoder's sentence
// embeddings stay to the original model's, over the sentences of a real text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparq/models/bert_encoder.hpp"
#include "sparq/models/wordpiece.hpp"

namespace sparq::bench {

// The files' sentences: cut after '.', '!' or '?' followed by white space, and at blank lines;
// white space runs folded; sentences of fewer than 4 words dropped; at most max_sentences.
// InvalidArgument for an unreadable file.
std::vector<std::string> text_sentences(const std::vector<std::string>& files,
                                        size_t max_sentences);

struct CosineReport {
  double mean = 0, min = 1;
  int64_t sentences = 0;
};

// The cosine between `model`'s and `reference`'s mean-pooled sentence embeddings, per sentence
// (one call each, the sentence's own length).
CosineReport embedding_cosine(const models::BertEncoder& reference,
                              const models::BertEncoder& model,
                              const models::WordPieceTokenizer& tokenizer,
                              const std::vector<std::string>& sentences, int64_t max_tokens);

}  // namespace sparq::bench
