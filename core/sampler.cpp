#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/mathfn.h"

namespace bitmamba {

namespace {

constexpr float kGreedyBelow = 0.05f;
constexpr int32_t kPenaltyExempt[] = {50256, 198, 628, 13};

bool is_exempt(int32_t id) {
  for (int32_t e : kPenaltyExempt)
    if (id == e) return true;
  return false;
}

// a ranks before b: higher logit, then lower id.
bool better(float la, int32_t ia, float lb, int32_t ib) { return la > lb || (la == lb && ia < ib); }

Status bad_param(const char* name, float value, const char* range) {
  return make_error(ErrorCode::kInvalidArgument,
                    std::string(name) + " = " + std::to_string(value) + " must be " + range);
}

}  // namespace

Status validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f || p.temperature > 100.0f)
    return bad_param("temperature", p.temperature, "a number in [0, 100]");
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty < 1.0f || p.repetition_penalty > 100.0f)
    return bad_param("repetition_penalty", p.repetition_penalty, "a number in [1, 100]");
  if (!std::isfinite(p.min_p) || p.min_p < 0.0f || p.min_p > 1.0f)
    return bad_param("min_p", p.min_p, "a number in [0, 1]");
  if (!std::isfinite(p.top_p) || p.top_p <= 0.0f || p.top_p > 1.0f)
    return bad_param("top_p", p.top_p, "a number in (0, 1]");
  if (p.top_k < 0)
    return make_error(ErrorCode::kInvalidArgument, "top_k = " + std::to_string(p.top_k) + " must be >= 0 (0: off)");
  return Status::Ok();
}

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : params_(params), vocab_(vocab_size), rng_(params.seed), penalized_(static_cast<size_t>(vocab_size)) {
  const int k = params.top_k == 0 || params.top_k > vocab_size ? vocab_size : params.top_k;
  candidates_.reserve(static_cast<size_t>(k));
  probs_.reserve(static_cast<size_t>(k));
}

// Keeps the k best of `logits` in candidates_, sorted best first. One pass
// with an insertion into a short sorted list: almost every logit loses the
// comparison with the current k-th and costs one compare.
void Sampler::select_top(const std::vector<float>& logits, int k) {
  candidates_.clear();
  for (int32_t id = 0; id < vocab_; ++id) {
    const float l = logits[static_cast<size_t>(id)];
    if (static_cast<int>(candidates_.size()) == k) {
      const Candidate& worst = candidates_.back();
      if (!better(l, id, worst.logit, worst.id)) continue;
      candidates_.pop_back();
    }
    auto pos = std::upper_bound(candidates_.begin(), candidates_.end(), Candidate{l, id},
                                [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); });
    candidates_.insert(pos, Candidate{l, id});
  }
}

int32_t Sampler::sample(const float* logits, const Session& session) {
  std::copy(logits, logits + vocab_, penalized_.begin());
  const float penalty = params_.repetition_penalty;
  if (penalty != 1.0f) {
    const uint64_t* bits = session.seen_bits();
    for (int32_t word = 0; word < (vocab_ + 63) / 64; ++word) {
      for (uint64_t w = bits[word]; w != 0; w &= w - 1) {
        const int32_t id = word * 64 + __builtin_ctzll(w);
        if (is_exempt(id)) continue;
        float& l = penalized_[static_cast<size_t>(id)];
        l = l > 0.0f ? l / penalty : l * penalty;
      }
    }
  }

  if (params_.temperature < kGreedyBelow) {
    int32_t best = 0;
    for (int32_t id = 1; id < vocab_; ++id)
      if (penalized_[static_cast<size_t>(id)] > penalized_[static_cast<size_t>(best)]) best = id;
    return best;
  }

  const int k = params_.top_k == 0 || params_.top_k > vocab_ ? vocab_ : params_.top_k;
  if (k == vocab_) {
    // top_k off: every token is a candidate; a full sort is what was asked for.
    candidates_.resize(static_cast<size_t>(vocab_));
    for (int32_t id = 0; id < vocab_; ++id) candidates_[static_cast<size_t>(id)] = {penalized_[static_cast<size_t>(id)], id};
    std::sort(candidates_.begin(), candidates_.end(),
              [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); });
  } else {
    select_top(penalized_, k);
  }

  const float top = candidates_[0].logit;
  const float temperature = params_.temperature;
  probs_.clear();
  for (const Candidate& c : candidates_) probs_.push_back(exp_f32((c.logit - top) / temperature));

  // min_p relative to the most likely token (probs_[0] == 1).
  size_t kept = probs_.size();
  if (params_.min_p > 0.0f) {
    const float threshold = params_.min_p * probs_[0];
    kept = 1;
    while (kept < probs_.size() && probs_[kept] >= threshold) ++kept;
  }

  float total = 0.0f;
  for (size_t i = 0; i < kept; ++i) total += probs_[i];
  if (params_.top_p < 1.0f) {
    const float target = params_.top_p * total;
    float running = 0.0f;
    size_t n = 0;
    while (n < kept) {
      running += probs_[n++];
      if (running >= target) break;
    }
    kept = n;
    total = running;
  }

  const float u = rng_.uniform() * total;
  float running = 0.0f;
  for (size_t i = 0; i < kept; ++i) {
    running += probs_[i];
    if (running > u) return candidates_[i].id;
  }
  return candidates_[kept - 1].id;
}

}  // namespace bitmamba
