#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

#include "core/sampler.h"
#include "test_models.h"

namespace bitmamba {
namespace {

constexpr int kVocab = 300;

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = testing::load_test_model(kVocab, 64, 1, 2);
    session_ = std::make_unique<Session>(*model_.model);
  }
  // Marks tokens as seen (fed) for the repetition penalty.
  void see(std::vector<int32_t> ids) { ASSERT_TRUE(session_->feed(ids.data(), ids.size()).ok()); }
  std::vector<float> flat(float value = -5.0f) { return std::vector<float>(kVocab, value); }

  std::map<int32_t, int> histogram(const SamplingParams& p, const std::vector<float>& logits, int draws) {
    Sampler s(p, kVocab);
    std::map<int32_t, int> h;
    for (int i = 0; i < draws; ++i) ++h[s.sample(logits.data(), *session_)];
    return h;
  }

  testing::TestModel model_;
  std::unique_ptr<Session> session_;
};

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.0f;
  return p;
}

TEST_F(SamplerTest, GreedyPicksHighestLowestIdOnTies) {
  auto l = flat();
  l[17] = 3.0f;
  l[250] = 3.0f;
  Sampler s(greedy(), kVocab);
  EXPECT_EQ(s.sample(l.data(), *session_), 17);
  SamplingParams cold = greedy();
  cold.temperature = 0.049f;  // below 0.05 is greedy too
  Sampler c(cold, kVocab);
  EXPECT_EQ(c.sample(l.data(), *session_), 17);
}

TEST_F(SamplerTest, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  see({5, 13, 40});
  auto l = flat();
  l[5] = 2.0f;   // seen: 2.0 / 1.15 = 1.739 < 1.9
  l[6] = 1.9f;
  SamplingParams p = greedy();
  p.repetition_penalty = 1.15f;
  EXPECT_EQ(Sampler(p, kVocab).sample(l.data(), *session_), 6);
  // Exempt ids (13 here) are never penalised.
  l[13] = 2.0f;
  EXPECT_EQ(Sampler(p, kVocab).sample(l.data(), *session_), 13);
  // Negative logits get further from zero: -1.0 * 1.15 < -1.1.
  auto n = flat(-10.0f);
  n[40] = -1.0f;
  n[41] = -1.1f;
  EXPECT_EQ(Sampler(p, kVocab).sample(n.data(), *session_), 41);
  p.repetition_penalty = 1.0f;
  EXPECT_EQ(Sampler(p, kVocab).sample(n.data(), *session_), 40);
}

TEST_F(SamplerTest, TopKOneIsArgmaxForEverySeed) {
  auto l = flat(0.0f);
  l[99] = 0.5f;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SamplingParams p;
    p.top_k = 1;
    p.seed = seed;
    p.repetition_penalty = 1.0f;
    EXPECT_EQ(Sampler(p, kVocab).sample(l.data(), *session_), 99);
  }
}

TEST_F(SamplerTest, TopKKeepsOnlyTheKBest) {
  auto l = flat(0.0f);
  for (int i = 0; i < 5; ++i) l[100 + i] = 1.0f;  // 5 equal best; everything else close behind
  SamplingParams p;
  p.top_k = 5;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  p.repetition_penalty = 1.0f;
  auto h = histogram(p, l, 2000);
  for (auto& kv : h) EXPECT_TRUE(kv.first >= 100 && kv.first < 105) << kv.first;
  EXPECT_EQ(h.size(), 5u);
}

TEST_F(SamplerTest, MinPDropsUnlikelyTokens) {
  auto l = flat(-30.0f);
  l[1] = 0.0f;
  l[2] = std::log(0.2f);   // p ratio 0.2: kept with min_p 0.1
  l[3] = std::log(0.05f);  // ratio 0.05: dropped
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.1f;
  p.temperature = 1.0f;
  p.repetition_penalty = 1.0f;
  auto h = histogram(p, l, 3000);
  EXPECT_EQ(h.count(3), 0u);
  EXPECT_GT(h[2], 300);
  EXPECT_EQ(h.size(), 2u);
}

// top_k skips whole blocks of 64 ids that cannot enter the list: the kept
// set must still be the k best penalised logits, lowest id first on ties,
// with the candidates spread over blocks, one in the short last block, a
// NaN, and penalised logits that were above the k-th before the penalty.
TEST_F(SamplerTest, TopKKeepsTheKBestAcrossSkippedBlocks) {
  see({5, 65, 66});
  auto l = flat();
  l[5] = 3.0f;    // seen: 3.0 / 1.15 = 2.61, still the best
  l[10] = 1.0f;   // ties at the k-th place: the lowest id, 10, is kept
  l[70] = 1.0f;
  l[130] = 1.0f;
  l[65] = 1.1f;   // seen: 0.957, out
  l[66] = -0.1f;  // seen: -0.115
  l[150] = std::nanf("");
  l[200] = 1.05f;
  l[299] = 1.02f;  // the last block holds ids 256..299
  SamplingParams p;
  p.top_k = 4;
  p.min_p = 0.0f;
  p.top_p = 1.0f;
  p.temperature = 1.0f;
  auto h = histogram(p, l, 3000);
  std::vector<int32_t> kept;
  for (const auto& [id, n] : h) kept.push_back(id);
  EXPECT_EQ(kept, (std::vector<int32_t>{5, 10, 200, 299}));
}

TEST_F(SamplerTest, TopPKeepsTheSmallestPrefix) {
  auto l = flat(-40.0f);
  l[7] = std::log(0.5f);
  l[8] = std::log(0.3f);
  l[9] = std::log(0.2f);
  SamplingParams p;
  p.top_k = 40;
  p.min_p = 0.0f;
  p.top_p = 0.75f;  // 0.5 + 0.3 reaches it: 9 is out
  p.temperature = 1.0f;
  p.repetition_penalty = 1.0f;
  auto h = histogram(p, l, 4000);
  EXPECT_EQ(h.count(9), 0u);
  EXPECT_NEAR(h[7] / 4000.0, 0.5 / 0.8, 0.03);
  EXPECT_NEAR(h[8] / 4000.0, 0.3 / 0.8, 0.03);
}

TEST_F(SamplerTest, FrequenciesFollowTheSoftmaxAtTemperature) {
  auto l = flat(-50.0f);
  l[20] = 1.0f;
  l[21] = 0.0f;
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 2.0f;  // p21 / p20 = exp(-0.5)
  p.repetition_penalty = 1.0f;
  auto h = histogram(p, l, 20000);
  const double expected = 1.0 / (1.0 + std::exp(-0.5));
  EXPECT_NEAR(h[20] / 20000.0, expected, 0.015);
}

TEST_F(SamplerTest, SameSeedSameStreamDifferentSeedDifferentStream) {
  auto l = flat(0.0f);
  SamplingParams p;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.top_p = 1.0f;
  p.repetition_penalty = 1.0f;
  p.seed = 5;
  Sampler a(p, kVocab), b(p, kVocab);
  p.seed = 6;
  Sampler c(p, kVocab);
  std::vector<int32_t> xa, xb, xc;
  for (int i = 0; i < 64; ++i) {
    xa.push_back(a.sample(l.data(), *session_));
    xb.push_back(b.sample(l.data(), *session_));
    xc.push_back(c.sample(l.data(), *session_));
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
}

TEST(SplitMix64, MatchesTheDocumentedAlgorithm) {
  // First outputs for seed 0 of the published SplitMix64 reference.
  SplitMix64 r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ull);
}

TEST(ValidateParams, RejectsNanAndOutOfRange) {
  const float nan = std::nanf("");
  auto bad = [](auto mutate) {
    SamplingParams p;
    mutate(p);
    return validate(p).code;
  };
  EXPECT_EQ(bad([&](SamplingParams& p) { p.temperature = nan; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad([&](SamplingParams& p) { p.temperature = -1; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad([&](SamplingParams& p) { p.repetition_penalty = 0.5f; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad([&](SamplingParams& p) { p.min_p = INFINITY; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad([&](SamplingParams& p) { p.top_p = 0; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad([&](SamplingParams& p) { p.top_k = -1; }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(validate(SamplingParams{}).code, ErrorCode::kOk);
}

}  // namespace
}  // namespace bitmamba
