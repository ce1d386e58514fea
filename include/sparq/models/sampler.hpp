// Picks the next token from a row of logits: greedy (temperature 0), or sampling from the
// softmax at a temperature, restricted to the top_k most likely tokens and then to the smallest
// set whose probability reaches top_p. Seeded, so a run can be repeated.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace sparq::models {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws InvalidArgument for a negative temperature or top_k, or top_p outside (0, 1].
  explicit Sampler(const SamplingOptions& options);
  // logits: [vocab]; InvalidArgument for an empty row or one with no finite logit.
  int32_t next(const std::vector<float>& logits);

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;
  std::vector<double> weights_;
};

}  // namespace sparq::models
