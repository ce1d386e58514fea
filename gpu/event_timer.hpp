// Times calls queued back to back on a stream of its own: an event before and after each and one
// wait at the end, so an interval is the call's GPU time rather than the launch latency a wait
// before every call would add. Used where sparq picks between implementations by their speed
// (the backend's candidates at pack time, cuBLASLt's algorithms per shape); beside it, the size
// from which the libraries' algorithms are tuned at all.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace sparq::gpu {

// Products of fewer multiply-adds (a few microseconds of work) keep each library's own choice
// untimed, cuBLASLt's heuristic first and cuSPARSELt's default: tuning would cost more than it
// could save. One threshold for both, so that both sides of a comparison are tuned alike.
constexpr double kMinTunedMacs = double{1 << 24};

// Whether a library's algorithms are timed for an m x n x k product.
inline bool worth_tuning(int64_t m, int64_t n, int64_t k) {
  return double(m) * double(n) * double(k) >= kMinTunedMacs;
}

class EventTimer {
 public:
  // Waits for the device first: earlier work would share the GPU with the timed calls, and
  // weights uploaded from pageable memory with cudaMemcpy may still be landing (the timing
  // stream, non-blocking, does not wait for the legacy stream).
  explicit EventTimer(int timed_calls);
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  cudaStream_t stream() const { return stream_; }
  // `warmup` untimed calls of call(stream()), then the timed ones; the median in milliseconds, or
  // nothing when a call returns false (the error it met is cleared, not left for a later launch
  // check).
  std::optional<float> median_ms(int warmup, const std::function<bool(cudaStream_t)>& call);

 private:
  void release();
  cudaStream_t stream_ = nullptr;
  std::vector<cudaEvent_t> events_;  // start and stop of each timed call
};

}  // namespace sparq::gpu
