// Decode allocates nothing: every buffer a token needs exists after the
// session's construction (and the sampler's), and the thread pool's threads
// were started at load. Counted with a replaced global operator new.
#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include <gtest/gtest.h>

#include "core/bitmamba.h"
#include "core/sampler.h"
#include "test_models.h"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// GCC flags free() on memory from operator new, not knowing both are replaced
// here as a malloc/free pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size != 0 ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace bitmamba {
namespace {

TEST(Decode, StepsAllocateNothing) {
  for (int threads : {1, 2}) {
    auto t = testing::load_test_model(400, 128, 2, 4, 1, threads);
    Session session(*t.model);
    const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ASSERT_TRUE(session.feed(prompt.data(), prompt.size()).ok());
    for (float temperature : {0.0f, 0.8f}) {
      SamplingParams p;
      p.temperature = temperature;
      Sampler sampler(p, 400);
      int32_t token = sampler.sample(session.logits(), session);
      ASSERT_TRUE(session.feed(&token, 1).ok());  // warm-up: first use of every path
      const long before = g_allocations.load();
      for (int i = 0; i < 20; ++i) {
        token = sampler.sample(session.logits(), session);
        ASSERT_TRUE(session.feed(&token, 1).ok());
      }
      EXPECT_EQ(g_allocations.load() - before, 0) << threads << " threads, temperature " << temperature;
    }
  }
}

}  // namespace
}  // namespace bitmamba
