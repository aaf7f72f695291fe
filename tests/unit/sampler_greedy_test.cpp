// The greedy path of the sampler (chunk maxima, no copy of the logits)
// against a plain first-maximum loop over penalised logits.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/sampler.h"
#include "test_models.h"

namespace bitmamba {
namespace {

constexpr int kVocab = 1000;  // several 64-id chunks and a ragged last one

int32_t reference_greedy(const std::vector<float>& logits, const Session& s, float penalty) {
  int32_t best = 0;
  float best_logit = 0;
  for (int32_t id = 0; id < kVocab; ++id) {
    float l = logits[static_cast<size_t>(id)];
    const bool exempt = id == 50256 || id == 198 || id == 628 || id == 13;
    if (penalty != 1.0f && s.seen(id) && !exempt) l = l > 0.0f ? l / penalty : l * penalty;
    if (id == 0 || l > best_logit) {
      best = id;
      best_logit = l;
    }
  }
  return best;
}

TEST(SamplerGreedy, MatchesFirstMaximumOfPenalisedLogits) {
  auto t = testing::load_test_model(kVocab, 64, 1, 2);
  std::mt19937 rng(5);
  for (int round = 0; round < 4; ++round) {
    Session session(*t.model);
    std::vector<int32_t> fed;
    for (int i = 0; i < round * 40; ++i) fed.push_back(static_cast<int32_t>(rng() % kVocab));
    if (round == 3) fed.push_back(0);  // id 0 itself penalised
    if (!fed.empty()) {
      ASSERT_TRUE(session.feed(fed.data(), fed.size()).ok());
    }
    for (float penalty : {1.0f, 1.15f, 3.0f}) {
      SamplingParams p;
      p.temperature = 0.0f;
      p.repetition_penalty = penalty;
      Sampler sampler(p, kVocab);
      for (int iter = 0; iter < 200; ++iter) {
        // Few distinct values, so ties across and within chunks are common.
        std::vector<float> logits(kVocab);
        for (float& l : logits) l = static_cast<float>(static_cast<int>(rng() % 9) - 4) * 0.5f;
        if (iter % 3 == 0) logits[rng() % kVocab] = 7.0f;
        if (iter % 5 == 0) logits[0] = 9.0f;
        EXPECT_EQ(sampler.sample(logits.data(), session), reference_greedy(logits, session, penalty))
            << "round " << round << " penalty " << penalty << " iter " << iter;
      }
    }
  }
}

}  // namespace
}  // namespace bitmamba
