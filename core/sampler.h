// Token sampling (docs/sampling.md), identical on every platform for a seed.
//
// The steps, in order (docs/sampling.md):
//   1. repetition penalty on every distinct token fed so far except
//      {50256, 198, 628, 13}: a positive logit is divided by it, a negative
//      one multiplied;
//   2. temperature < 0.05: greedy, the highest logit (lowest id on ties);
//   3. top_k: keep the k highest logits (ties: lower id first), sorted;
//   4. p_i = exp((l_i - l_max) / temperature) in that order;
//   5. min_p: drop p_i < min_p * p_max;
//   6. top_p: keep the shortest prefix whose sum reaches top_p * sum;
//   7. u = uniform() * (sum of the kept p), pick the first i whose running
//      sum exceeds u (the last kept one if rounding leaves none).
// uniform() is SplitMix64: state += 0x9E3779B97F4A7C15, then the output is
// mixed with (x ^ x>>30) * 0xBF58476D1CE4E5B9, (x ^ x>>27) * 0x94D049BB133111EB,
// x ^ x>>31; uniform = (output >> 40) * 2^-24, in [0, 1). The state starts at
// the seed.
#pragma once

#include <cstdint>
#include <vector>

#include "core/bitmamba.h"
#include "core/rng.h"

namespace bitmamba {

class Sampler {
 public:
  // params must have passed validate().
  Sampler(const SamplingParams& params, int vocab_size);

  // Picks the next token from `logits` [vocab]; `seen` says which tokens the
  // repetition penalty applies to. No allocation after construction.
  int32_t sample(const float* logits, const Session& session);

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  int32_t greedy(const float* logits, const Session& session) const;
  template <class Wanted, class Fn>
  void for_each_penalized(const float* logits, const Session& session, Wanted&& wanted, Fn&& fn) const;
  void top_k(const float* logits, const Session& session, int k);

  SamplingParams params_;
  int vocab_;
  SplitMix64 rng_;
  std::vector<Candidate> candidates_;   // [k] kept sorted, best first
  std::vector<float> probs_;            // [k]
};

}  // namespace bitmamba
