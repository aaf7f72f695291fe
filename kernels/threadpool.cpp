#include "kernels/threadpool.h"

namespace bitmamba {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A pause is 10-40 ns. Waiting threads spin for ~50 us (longer than a chunk
// of decode work normally takes), then yield the CPU on every further check:
// on a machine with more runnable threads than cores, the thread being
// waited for may be the one that needs this core. An idle worker sleeps
// after ~1 ms: longer than the gap between two kernels of one token,
// shorter than a human notices.
constexpr int kSpinsBeforeYield = 1 << 11;
constexpr int kSpinsBeforeSleep = 1 << 16;

inline void wait_a_little(int spins) {
  if (spins < kSpinsBeforeYield)
    cpu_relax();
  else
    std::this_thread::yield();
}

// Chunks per thread: one. Every chunk costs a GEMV a fresh start on rows
// nothing has touched ahead of it (and a contended compare-exchange), and
// that outweighed what smaller chunks save when one thread is slow. 255M
// decode at 2 threads, interleaved rounds on the idle machine, one chunk
// against two: Chromium (relaxed) +4..+12 %, native AVX2 +6..+10 %,
// AVX-512 +11..+22 %; two against four had already gained 7-14 % in
// Chromium and 9-11 % with AVX-512, and eight ran 11-16 % slower than four.
// With a busy process on one of the two cores, native AVX2 decode was
// 0-5 % and prefill 3-11 % slower with one chunk than with two.
constexpr int kChunksPerThread = 1;

constexpr uint64_t kItemMask = 0xffffffffull;
constexpr uint64_t kClosed = 0x7fffffff;  // a begin past any n: nothing left to claim

inline uint32_t job_of(uint64_t claim) { return static_cast<uint32_t>(claim >> 32); }

}  // namespace

ThreadPool::ThreadPool(int threads) {
  // Job 0 is "none yet": a worker that starts after the first job was posted
  // still sees it as new.
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(0); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    n_.store(0, std::memory_order_relaxed);
    claim_.store(static_cast<uint64_t>(job_of(claim_.load()) + 1) << 32);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::work(uint32_t job) {
  uint64_t cur = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (job_of(cur) != job) return;
    // n_ and chunk_ may already belong to a later job if this one finished
    // meanwhile; then claim_ has changed too and the exchange below fails.
    const int n = n_.load(std::memory_order_acquire);  // pairs with run(): a new n_ implies the job closed
    const int begin = static_cast<int>(cur & kItemMask);
    if (begin >= n) return;
    const int chunk = chunk_.load(std::memory_order_relaxed);
    const int end = chunk < n - begin ? begin + chunk : n;
    if (!claim_.compare_exchange_weak(cur, (cur & ~kItemMask) | static_cast<uint64_t>(end), std::memory_order_acq_rel,
                                      std::memory_order_acquire))
      continue;
    // The job cannot change before this chunk is counted as done.
    call_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), begin, end);
    done_.fetch_add(end - begin, std::memory_order_release);
  }
}

void ThreadPool::run(int n, int grain, Call call, void* ctx) {
  if (n <= 0) return;
  if (workers_.empty()) {
    call(ctx, 0, n);
    return;
  }
  grain = grain > 0 ? grain : 1;
  // Close the previous job before its fields are rewritten: a worker still in
  // work() for it holds a claim word whose begin equals the old n, and would
  // otherwise compare it with the new n_ and claim [old n, new n) of a job
  // that is over (running the new call on it and overcounting done_, so this
  // call never returns). Its compare-exchange now fails instead.
  const uint32_t job = job_of(claim_.load(std::memory_order_relaxed)) + 1;
  claim_.store(static_cast<uint64_t>(job - 1) << 32 | kClosed);
  const int units = (n - 1) / grain + 1;
  const int chunks = size() * kChunksPerThread;
  const int chunk_units = (units - 1) / chunks + 1;
  call_.store(call, std::memory_order_relaxed);
  ctx_.store(ctx, std::memory_order_relaxed);
  n_.store(n, std::memory_order_release);
  const int64_t chunk = static_cast<int64_t>(chunk_units) * grain;
  chunk_.store(chunk < n ? static_cast<int>(chunk) : n, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  // seq_cst on this store and on sleepers_: a worker going to sleep and this
  // caller must not both miss each other's write.
  claim_.store(static_cast<uint64_t>(job) << 32);
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    wake_.notify_all();
  }
  work(job);
  for (int spins = 0; done_.load(std::memory_order_acquire) != n; ++spins) wait_a_little(spins);
}

void ThreadPool::worker_loop(uint32_t seen) {
  for (;;) {
    uint64_t cur;
    int spins = 0;
    while (job_of(cur = claim_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinsBeforeSleep) {
        wait_a_little(spins);
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return job_of(claim_.load()) != seen; });
      sleepers_.fetch_sub(1);
      spins = 0;
    }
    if (stop_.load()) return;
    seen = job_of(cur);
    work(seen);
  }
}

}  // namespace bitmamba
