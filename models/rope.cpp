#include "models/rope.hpp"

#include <cmath>
#include <numbers>

namespace sparq::models {

std::vector<float> rope_inverse_frequencies(const LlamaConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half));
  const RopeScaling& s = c.rope_scaling;
  for (int64_t i = 0; i < half; ++i) {
    double f =
        std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    if (s.kind == RopeScaling::Kind::linear) {
      f /= s.factor;
    } else if (s.kind == RopeScaling::Kind::llama3) {
      const double old = static_cast<double>(s.original_max_position);
      const double low_wavelen = old / s.low_freq_factor, high_wavelen = old / s.high_freq_factor;
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    if (!c.rope_freq_factors.empty()) f /= c.rope_freq_factors[static_cast<size_t>(i)];
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

RopeTable::RopeTable(const std::vector<float>& inv_freq, int64_t positions)
    : half_(static_cast<int64_t>(inv_freq.size())),
      cos_(static_cast<size_t>(positions * half_)),
      sin_(cos_.size()) {
  for (int64_t pos = 0; pos < positions; ++pos)
    for (int64_t i = 0; i < half_; ++i) {
      // The angle in float, as the reference implementations compute it.
      const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
      cos_[static_cast<size_t>(pos * half_ + i)] = std::cos(angle);
      sin_[static_cast<size_t>(pos * half_ + i)] = std::sin(angle);
    }
}

void RopeTable::apply(float* v, int64_t pos) const {
  const float* cos = cos_.data() + pos * half_;
  const float* sin = sin_.data() + pos * half_;
  for (int64_t i = 0; i < half_; ++i) {
    const float a = v[i], b = v[i + half_];
    v[i] = a * cos[i] - b * sin[i];
    v[i + half_] = b * cos[i] + a * sin[i];
  }
}

}  // namespace sparq::models
