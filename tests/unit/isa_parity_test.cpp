// End to end: a small model's logits are bit-identical whatever the kernel
// table and the thread count, after a batched prefill and after each decode
// step.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/bitmamba.h"
#include "kernels/kernels.h"
#include "test_models.h"

namespace bitmamba {
namespace {

struct Shape {
  int vocab, d_model, layers, heads;
};

// Logits after a 70-token prefill (two chunks) and after each of 6 decode steps.
std::vector<std::vector<float>> trace(const Shape& s, const char* isa, int threads) {
  auto t = testing::load_test_model(s.vocab, s.d_model, s.layers, s.heads, 1, threads, isa);
  std::vector<std::vector<float>> out;
  if (!t.model) return out;
  Session session(*t.model);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 70; ++i) prompt.push_back((i * 131 + 7) % s.vocab);
  EXPECT_TRUE(session.feed(prompt.data(), prompt.size()).ok());
  for (int step = 0; step <= 6; ++step) {
    const float* l = session.logits();
    out.emplace_back(l, l + s.vocab);
    const int32_t next = (step * 53 + 11) % s.vocab;
    EXPECT_TRUE(session.feed(&next, 1).ok());
  }
  return out;
}

void expect_same(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t step = 0; step < a.size(); ++step) {
    ASSERT_EQ(a[step].size(), b[step].size());
    for (size_t i = 0; i < a[step].size(); ++i)
      ASSERT_EQ(std::memcmp(&a[step][i], &b[step][i], sizeof(float)), 0)
          << what << ": step " << step << " logit " << i << ": " << a[step][i] << " vs " << b[step][i];
  }
}

// d_model 64: columns padded to 128 (repacked out of place); 256 and 384:
// in place, several 128-column blocks; heads 8 with d_model 60: head_dim 15,
// so eight channels span two heads.
const Shape kShapes[] = {{300, 64, 2, 4}, {500, 256, 3, 8}, {333, 384, 2, 6}, {257, 60, 2, 8}};

TEST(IsaParity, ThreadsGiveIdenticalLogits) {
  for (const Shape& s : kShapes) {
    const auto one = trace(s, nullptr, 1);
    expect_same(one, trace(s, nullptr, 2), "best table, 1 vs 2 threads, d_model " + std::to_string(s.d_model));
    expect_same(one, trace(s, nullptr, 3), "best table, 1 vs 3 threads, d_model " + std::to_string(s.d_model));
  }
}

TEST(IsaParity, TablesGiveIdenticalLogits) {
  const char* const isas[] = {"avx2", "avx512", "simd128", "relaxed", "relaxed-dot-add"};
  int available = 0;
  for (const char* isa : isas) available += kernels::table_by_name(isa) != nullptr;
  if (available == 0) GTEST_SKIP() << "no optimised kernel table on this CPU/build: nothing to compare with scalar";
  for (const char* isa : isas) {
    if (kernels::table_by_name(isa) == nullptr) continue;
    for (const Shape& s : kShapes) {
      const auto scalar = trace(s, "scalar", 1);
      expect_same(scalar, trace(s, isa, 1), std::string("scalar vs ") + isa + ", d_model " + std::to_string(s.d_model));
      expect_same(scalar, trace(s, isa, 2),
                  std::string("scalar vs ") + isa + " on 2 threads, d_model " + std::to_string(s.d_model));
    }
  }
}

}  // namespace
}  // namespace bitmamba
