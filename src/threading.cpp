#include "src/threading.hpp"

#include <pthread.h>
#include <sched.h>
#include <tbb/task_scheduler_observer.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sparq/error.hpp"

namespace sparq {

namespace {

std::mutex& arenas_mutex() {
  static std::mutex mutex;
  return mutex;
}

cpu_set_t cpu_set_of(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  return set;
}

// Pins each thread entering its arena to the arena's current CPU set. One per arena for the
// process's life: pinning again changes the set. Threads enter an arena at every parallel
// region, so the check on entry is a thread-local compare: a thread pins itself (a system call,
// tens of microseconds under a hypervisor) only when the set changed since it last did.
class PinningObserver : public tbb::task_scheduler_observer {
 public:
  explicit PinningObserver(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) {
    observe(true);
  }
  ~PinningObserver() override { observe(false); }
  void set_cpus(std::vector<int> cpus) {
    std::lock_guard lock(mutex_);
    cpus_ = std::move(cpus);
    // Process-wide, so that no two sets of any observers share a number.
    static std::atomic<uint64_t> generations{0};
    generation_.store(++generations, std::memory_order_release);
  }
  void on_scheduler_entry(bool /*worker*/) override {
    thread_local uint64_t pinned_generation = 0;
    const uint64_t current = generation_.load(std::memory_order_acquire);
    if (pinned_generation == current) return;
    std::lock_guard lock(mutex_);
    if (pin_this_thread(cpus_)) pinned_generation = current;
  }

 private:
  std::mutex mutex_;
  std::vector<int> cpus_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace

bool pin_this_thread(const std::vector<int>& cpus) {
  if (cpus.empty()) return false;
  const cpu_set_t set = cpu_set_of(cpus);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool pin_pool(int threads, int pool, const std::vector<int>& cpus) {
  const std::vector<int> allowed = allowed_cpus();
  for (int c : cpus)
    if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) return false;
  tbb::task_arena& arena = arena_for(threads, pool);
  // Never destroyed: oneTBB frees an observer's record lazily, on a later pass of the arena's
  // threads, so observers unregistered at exit leave it behind (LeakSanitizer reports it).
  static auto* observers = new std::map<std::pair<int, int>, std::unique_ptr<PinningObserver>>;
  std::lock_guard lock(arenas_mutex());
  auto& observer = (*observers)[{threads, pool}];
  if (!observer) observer = std::make_unique<PinningObserver>(arena);
  observer->set_cpus(cpus);
  return true;
}

tbb::task_arena& arena_for(int threads, int pool) {
  static std::map<std::pair<int, int>, std::unique_ptr<tbb::task_arena>> arenas;
  std::lock_guard lock(arenas_mutex());
  auto& arena = arenas[{threads, pool}];
  if (!arena) {
    arena = std::make_unique<tbb::task_arena>(threads);
    arena->initialize();
  }
  return *arena;
}

int hardware_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return tbb::this_task_arena::max_concurrency();
}

int resolve_threads(int requested) {
  if (requested < 0)
    throw InvalidArgument("threads must be >= 0 (0 means all cores), got " +
                          std::to_string(requested));
  return requested == 0 ? hardware_threads() : requested;
}

}  // namespace sparq
