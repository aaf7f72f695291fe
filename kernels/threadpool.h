// A persistent pool of std::threads (Emscripten pthreads in wasm) that runs
// one parallel loop at a time, split into contiguous ranges.
//
// Decode calls parallel_for ~50 times per token, so a call must cost a few
// microseconds: idle workers spin for a while on an atomic generation counter
// before they sleep on a condition variable. Nothing is allocated per call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace bitmamba {

class ThreadPool {
 public:
  // `threads` counts the calling thread: 1 starts no worker.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), one per thread,
  // each boundary a multiple of `grain`; returns when all are done.
  template <class Fn>
  void parallel_for(int n, int grain, Fn&& fn) {
    run(n, grain, [](void* ctx, int begin, int end) { (*static_cast<Fn*>(ctx))(begin, end); }, &fn);
  }

 private:
  using Call = void (*)(void* ctx, int begin, int end);
  void run(int n, int grain, Call call, void* ctx);
  void worker_loop(int index);
  void run_share(int index);

  std::vector<std::thread> workers_;
  // The current job; written by the caller before the generation bump.
  Call call_ = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
  int grain_ = 1;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace bitmamba
