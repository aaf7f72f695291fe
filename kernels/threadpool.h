// A persistent pool of std::threads (Emscripten pthreads in wasm) that runs
// one parallel loop at a time.
//
// Decode calls parallel_for ~50-75 times per token, so a call must cost a
// microsecond or two: idle workers spin for a while on the job word before
// they sleep on a condition variable, and nothing is allocated per call.
//
// Work is claimed, not assigned: the range is cut into one chunk per thread
// and every thread, the caller included, takes the next unclaimed chunk
// until none is left. A worker that has not woken up yet (a busy machine, a
// background browser tab) then delays nothing: the threads that are running
// take its chunk. One that the OS deschedules while it holds a chunk delays
// the call by that chunk (why not smaller chunks: threadpool.cpp).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
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

  // Calls fn(begin, end) on disjoint ranges covering [0, n), each boundary a
  // multiple of `grain`, from any of the pool's threads; returns when all
  // are done. One call at a time per pool.
  template <class Fn>
  void parallel_for(int n, int grain, Fn&& fn) {
    using F = typename std::remove_reference<Fn>::type;
    run(n, grain, [](void* ctx, int begin, int end) { (*static_cast<F*>(ctx))(begin, end); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Call = void (*)(void* ctx, int begin, int end);
  void run(int n, int grain, Call call, void* ctx);
  void worker_loop(uint32_t seen);
  // Claims and runs chunks of job `job` until none is left.
  void work(uint32_t job);

  std::vector<std::thread> workers_;

  // The current job. Written by the caller while no job is open; read by
  // workers only between seeing the job's number in claim_ and claiming a
  // chunk of it, which fails if the job changed meanwhile (see work()).
  // Atomics only so that such a stale read is not a data race.
  std::atomic<Call> call_{nullptr};
  std::atomic<void*> ctx_{nullptr};
  std::atomic<int> n_{0};
  std::atomic<int> chunk_{1};  // items per claim, a multiple of grain

  // (job number << 32) | next unclaimed item. A new job bumps the number and
  // resets the item in one store, so a claim can never mix two jobs.
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<int> done_{0};  // items finished in the current job
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
};

}  // namespace bitmamba
