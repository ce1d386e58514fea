#include "sparq/models/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "sparq/error.hpp"

namespace sparq::models {

Sampler::Sampler(const SamplingOptions& o) : options_(o), rng_(o.seed) {
  if (!(o.temperature >= 0.0f) || o.top_k < 0 || !(o.top_p > 0.0f && o.top_p <= 1.0f))
    throw InvalidArgument(
        "sampler: temperature must be >= 0, top_k >= 0 and top_p in (0, 1]; got " +
        std::to_string(o.temperature) + ", " + std::to_string(o.top_k) + ", " +
        std::to_string(o.top_p));
}

int32_t Sampler::next(const std::vector<float>& logits) {
  const auto vocab = static_cast<int32_t>(logits.size());
  int32_t best = -1;
  for (int32_t i = 0; i < vocab; ++i)
    if (std::isfinite(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
  if (best < 0) throw InvalidArgument("sampler: no finite logit to choose from");
  if (options_.temperature == 0.0f) return best;

  // Candidates by descending logit: all of them, or the top_k.
  order_.resize(static_cast<size_t>(vocab));
  std::iota(order_.begin(), order_.end(), 0);
  const auto by_logit = [&](int32_t a, int32_t b) {
    const bool fa = std::isfinite(logits[a]), fb = std::isfinite(logits[b]);
    return fa != fb ? fa : (logits[a] > logits[b] || (logits[a] == logits[b] && a < b));
  };
  size_t keep = order_.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < keep) {
    keep = static_cast<size_t>(options_.top_k);
    std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(keep),
                      order_.end(), by_logit);
  } else {
    std::sort(order_.begin(), order_.end(), by_logit);
  }
  while (keep > 1 && !std::isfinite(logits[order_[keep - 1]])) --keep;
  // Softmax at the temperature (in double, relative to the largest logit).
  weights_.resize(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i)
    total += weights_[i] =
        std::exp((double(logits[order_[i]]) - logits[best]) / double(options_.temperature));
  // top_p: the smallest prefix whose probability reaches it.
  if (options_.top_p < 1.0f) {
    double mass = 0;
    size_t n = 0;
    while (n < keep && mass < options_.top_p * total) mass += weights_[n++];
    keep = std::max<size_t>(n, 1);
    total = mass;
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (size_t i = 0; i < keep; ++i) {
    if (r < weights_[i]) return order_[i];
    r -= weights_[i];
  }
  return order_[keep - 1];
}

}  // namespace sparq::models
