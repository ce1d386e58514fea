#include "bench/llama_quality.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>

#include "sparq/error.hpp"

namespace sparq::bench {

std::vector<int32_t> text_tokens(const std::vector<std::string>& files,
                                 const models::Tokenizer& tokenizer) {
  std::string text;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw InvalidArgument("cannot read the text file " + f);
    std::ostringstream s;
    s << in.rdbuf();
    if (!text.empty()) text += "\n\n";
    text += s.str();
  }
  return tokenizer.encode(text, false);
}

namespace {

using Clock = std::chrono::steady_clock;

// -log softmax(logits)[target], in double.
double nll(const float* logits, int64_t vocab, int32_t target) {
  const float top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(double(logits[i]) - top);
  return std::log(sum) + top - double(logits[target]);
}

int64_t chunks_in(const std::vector<int32_t>& tokens, int64_t ctx, int64_t max_chunks) {
  if (ctx < 4) throw InvalidArgument("the perplexity context must be at least 4 tokens");
  const int64_t fit = static_cast<int64_t>(tokens.size()) / ctx;
  return max_chunks > 0 ? std::min(fit, max_chunks) : fit;
}

}  // namespace

PerplexityReport perplexity(const models::LlamaModel& model, const std::vector<int32_t>& tokens,
                            int64_t ctx, int64_t max_chunks, bool decode_steps) {
  const int64_t chunks = chunks_in(tokens, ctx, max_chunks);
  if (chunks < 1)
    throw InvalidArgument("the text has " + std::to_string(tokens.size()) +
                          " tokens, fewer than one chunk of " + std::to_string(ctx));
  const int64_t vocab = model.config().vocab_size, first = ctx / 2;
  PerplexityReport r;
  r.decode_steps = decode_steps;
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const std::vector<int32_t> ids(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx);
    auto session = model.start(ctx);
    const auto t0 = Clock::now();
    if (decode_steps) {
      for (int64_t j = 0; j < ctx - 1; ++j) {
        const auto logits = session.forward({ids[static_cast<size_t>(j)]});
        if (j >= first) total += nll(logits.data(), vocab, ids[static_cast<size_t>(j + 1)]);
      }
    } else {
      const auto logits = session.forward(ids, true);
      for (int64_t j = first; j < ctx - 1; ++j)
        total += nll(logits.data() + j * vocab, vocab, ids[static_cast<size_t>(j + 1)]);
    }
    r.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    r.scored_tokens += ctx - 1 - first;
  }
  r.chunks = chunks;
  r.perplexity = std::exp(total / static_cast<double>(r.scored_tokens));
  return r;
}

}  // namespace sparq::bench
