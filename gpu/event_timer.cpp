#include "gpu/event_timer.hpp"

#include <algorithm>

#include "gpu/cuda_check.hpp"

namespace sparq::gpu {

EventTimer::EventTimer(int timed_calls) {
  try {
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize (before timing)");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    events_.resize(2 * static_cast<size_t>(timed_calls), nullptr);
    for (cudaEvent_t& e : events_) check_cuda(cudaEventCreate(&e), "cudaEventCreate");
  } catch (...) {
    release();  // no destructor runs for a constructor that throws
    throw;
  }
}

EventTimer::~EventTimer() { release(); }

void EventTimer::release() {
  for (cudaEvent_t e : events_)
    if (e) cudaEventDestroy(e);
  events_.clear();
  if (stream_) cudaStreamDestroy(stream_);
  stream_ = nullptr;
}

std::optional<float> EventTimer::median_ms(int warmup,
                                           const std::function<bool(cudaStream_t)>& call) {
  bool ran = true;
  for (int i = 0; i < warmup && ran; ++i) ran = call(stream_);
  const size_t timed = events_.size() / 2;
  for (size_t i = 0; i < timed && ran; ++i) {
    check_cuda(cudaEventRecord(events_[2 * i], stream_), "cudaEventRecord");
    ran = call(stream_);
    check_cuda(cudaEventRecord(events_[2 * i + 1], stream_), "cudaEventRecord");
  }
  check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize (timing)");
  if (!ran) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  std::vector<float> ms(timed);
  for (size_t i = 0; i < timed; ++i)
    check_cuda(cudaEventElapsedTime(&ms[i], events_[2 * i], events_[2 * i + 1]),
               "cudaEventElapsedTime");
  std::sort(ms.begin(), ms.end());
  return ms[timed / 2];
}

}  // namespace sparq::gpu
