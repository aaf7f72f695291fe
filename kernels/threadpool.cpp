#include "kernels/threadpool.h"

namespace bitmamba {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// About 50-200 microseconds of spinning before a worker sleeps: longer than
// the gap between two kernels of one token, shorter than a human notices.
constexpr int kSpinsBeforeSleep = 1 << 16;

}  // namespace

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_share(int index) {
  const int threads = size();
  const int units = (n_ + grain_ - 1) / grain_;
  const int begin = static_cast<int>(static_cast<long long>(units) * index / threads) * grain_;
  int end = static_cast<int>(static_cast<long long>(units) * (index + 1) / threads) * grain_;
  end = end < n_ ? end : n_;
  if (begin < end) call_(ctx_, begin, end);
}

void ThreadPool::run(int n, int grain, Call call, void* ctx) {
  if (n <= 0) return;
  if (workers_.empty()) {
    call(ctx, 0, n);
    return;
  }
  call_ = call;
  ctx_ = ctx;
  n_ = n;
  grain_ = grain > 0 ? grain : 1;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  // seq_cst on the bump and on sleepers_: a worker going to sleep and this
  // caller must not both miss each other's write.
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  run_share(0);
  while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

void ThreadPool::worker_loop(int index) {
  unsigned seen = generation_.load(std::memory_order_acquire);
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (++spins < kSpinsBeforeSleep) {
        cpu_relax();
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_share(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace bitmamba
