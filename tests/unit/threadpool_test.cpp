#include "kernels/threadpool.h"

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bitmamba {
namespace {

// Every item of [0, n) exactly once, every range boundary a multiple of grain.
void check_cover(ThreadPool& pool, int n, int grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n > 0 ? n : 1));
  for (auto& h : hits) h.store(0);
  std::atomic<int> bad_bounds{0};
  pool.parallel_for(n, grain, [&](int begin, int end) {
    if (begin < 0 || end > n || begin >= end || begin % grain != 0 || (end % grain != 0 && end != n)) ++bad_bounds;
    for (int i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
  });
  ASSERT_EQ(bad_bounds.load(), 0) << "n " << n << " grain " << grain;
  for (int i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n;
}

TEST(ThreadPool, CoversEveryItemOnce) {
  std::mt19937 rng(3);
  for (int threads : {1, 2, 3, 4, 8}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int iter = 0; iter < 300; ++iter) {
      const int n = iter < 20 ? iter : static_cast<int>(rng() % 5000);
      const int grain = 1 + static_cast<int>(rng() % 64);
      check_cover(pool, n, grain);
    }
  }
}

TEST(ThreadPool, UsableRightAfterConstruction) {
  // A worker that starts after the first job was posted must still run it.
  for (int iter = 0; iter < 200; ++iter) {
    ThreadPool pool(1 + iter % 4);
    check_cover(pool, 1000, 16);
  }
}

TEST(ThreadPool, ManySmallCallsBackToBack) {
  ThreadPool pool(4);
  std::atomic<long> total{0};
  for (int iter = 0; iter < 20000; ++iter)
    pool.parallel_for(64, 1, [&](int begin, int end) { total.fetch_add(end - begin, std::memory_order_relaxed); });
  EXPECT_EQ(total.load(), 20000L * 64);
}

// A worker late to notice that a small job is over must not claim part of
// the next, larger one under the old job's number (that bug hung run() in
// about one of five runs of this test).
TEST(ThreadPool, SmallAndLargeCallsAlternating) {
  ThreadPool pool(3);
  std::atomic<long> total{0};
  long want = 0;
  for (int iter = 0; iter < 100000; ++iter) {
    const int n = iter % 2 == 0 ? 3 : 700 + iter % 300;
    want += n;
    pool.parallel_for(n, 1, [&](int begin, int end) { total.fetch_add(end - begin, std::memory_order_relaxed); });
    ASSERT_EQ(total.load(), want) << "call " << iter;
  }
}

TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int iter = 0; iter < 5; ++iter) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // long enough for the workers to sleep
    check_cover(pool, 777, 7);
  }
}

// The results of a call are visible to the caller when it returns.
TEST(ThreadPool, WritesAreVisibleAfterReturn) {
  ThreadPool pool(2);
  std::vector<int> v(4096);
  for (int iter = 1; iter <= 500; ++iter) {
    pool.parallel_for(static_cast<int>(v.size()), 16, [&](int begin, int end) {
      for (int i = begin; i < end; ++i) v[static_cast<size_t>(i)] = iter;
    });
    for (int x : v) ASSERT_EQ(x, iter);
  }
}

}  // namespace
}  // namespace bitmamba
