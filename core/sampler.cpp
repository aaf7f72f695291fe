#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/mathfn.h"

#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

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

// Whether some x[i] of n > 0 is above `threshold` or is NaN. The wasm form
// keeps 4 lanes of maxima and a NaN mask; natively the compiler vectorises
// the plain loop.
bool any_above(const float* x, int n, float threshold) {
  int i = 0;
#if defined(__wasm_simd128__)
  const v128_t t = wasm_f32x4_splat(threshold);
  v128_t above = wasm_i32x4_splat(0);
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    // !(v <= t): above the threshold, or NaN.
    above = wasm_v128_or(above, wasm_v128_not(wasm_f32x4_le(v, t)));
  }
  if (wasm_v128_any_true(above)) return true;
#endif
  bool found = false;
  for (; i < n; ++i) found |= !(x[i] <= threshold);
  return found;
}

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
    : params_(params), vocab_(vocab_size), rng_(params.seed) {
  const int k = params.top_k == 0 || params.top_k > vocab_size ? vocab_size : params.top_k;
  candidates_.reserve(static_cast<size_t>(k));
  probs_.reserve(static_cast<size_t>(k));
}

// Calls fn(id, penalized logit) for every id in increasing order, without
// copying the logits: 64 ids at a time, the blocks [base, end) for which
// wanted(base, end) holds, and only the words of the seen-token bitset that
// are not zero take the per-id penalty test.
template <class Wanted, class Fn>
void Sampler::for_each_penalized(const float* logits, const Session& session, Wanted&& wanted, Fn&& fn) const {
  const float penalty = params_.repetition_penalty;
  const uint64_t* bits = session.seen_bits();
  for (int32_t base = 0; base < vocab_; base += 64) {
    const int32_t end = vocab_ - base < 64 ? vocab_ : base + 64;
    if (!wanted(base, end)) continue;
    const uint64_t word = penalty != 1.0f ? bits[base / 64] : 0;
    if (word == 0) {
      for (int32_t id = base; id < end; ++id) fn(id, logits[id]);
      continue;
    }
    for (int32_t id = base; id < end; ++id) {
      float l = logits[id];
      if (((word >> (id - base)) & 1) != 0 && !is_exempt(id)) l = l > 0.0f ? l / penalty : l * penalty;
      fn(id, l);
    }
  }
}

// Highest penalized logit, lowest id on ties. 64 ids without a penalty take
// their maximum first (m > x ? m : x, one maxss per logit with 4 chains)
// and look for its lowest id only when it beats the best so far. In wasm the
// 4 chains are the lanes of one f32x4.pmax: pmax(x, m) is x < m ? m : x, the
// same select lane by lane, so the result is the same bit for bit (NaNs
// included). V8 ran the scalar form 3-5x slower, about 0.1 ms per token.
int32_t Sampler::greedy(const float* logits, const Session& session) const {
  const float penalty = params_.repetition_penalty;
  const uint64_t* bits = session.seen_bits();
  const auto penalize = [penalty](float l) { return l > 0.0f ? l / penalty : l * penalty; };
  int32_t best = 0;
  float best_logit = logits[0];
  if (penalty != 1.0f && (bits[0] & 1) != 0 && !is_exempt(0)) best_logit = penalize(best_logit);
  for (int32_t base = 0; base < vocab_; base += 64) {
    const int32_t end = vocab_ - base < 64 ? vocab_ : base + 64;
    const uint64_t word = penalty != 1.0f ? bits[base / 64] : 0;
    if (word != 0) {
      for (int32_t id = base; id < end; ++id) {
        float l = logits[id];
        if (((word >> (id - base)) & 1) != 0 && !is_exempt(id)) l = penalize(l);
        if (l > best_logit) {
          best = id;
          best_logit = l;
        }
      }
      continue;
    }
    int32_t id = base;
#if defined(__wasm_simd128__)
    v128_t chains = wasm_f32x4_splat(logits[base]);
    for (; id + 4 <= end; id += 4) chains = wasm_f32x4_pmax(wasm_v128_load(logits + id), chains);
    float m0 = wasm_f32x4_extract_lane(chains, 0), m1 = wasm_f32x4_extract_lane(chains, 1);
    float m2 = wasm_f32x4_extract_lane(chains, 2), m3 = wasm_f32x4_extract_lane(chains, 3);
#else
    float m0 = logits[base], m1 = m0, m2 = m0, m3 = m0;
    for (; id + 4 <= end; id += 4) {
      m0 = m0 > logits[id] ? m0 : logits[id];
      m1 = m1 > logits[id + 1] ? m1 : logits[id + 1];
      m2 = m2 > logits[id + 2] ? m2 : logits[id + 2];
      m3 = m3 > logits[id + 3] ? m3 : logits[id + 3];
    }
#endif
    for (; id < end; ++id) m0 = m0 > logits[id] ? m0 : logits[id];
    m0 = m0 > m1 ? m0 : m1;
    m2 = m2 > m3 ? m2 : m3;
    const float m = m0 > m2 ? m0 : m2;
    if (!(m > best_logit)) continue;
    for (id = base; id < end; ++id) {
      if (logits[id] == m) {
        best = id;
        best_logit = m;
        break;
      }
    }
  }
  return best;
}

// The k best, sorted best first: one pass with an insertion into a short
// sorted list. Once the list is full, a block of 64 ids whose raw logits are
// all at most the k-th's is skipped whole: the penalty only lowers a logit
// (it divides a positive one and multiplies a negative one by >= 1), and an
// equal logit loses on its id, which is higher than every id in the list.
// Most blocks are skipped so; a Chromium profile (which slows everything)
// had put the per-id test at ~0.1 ms a token over the 50257 logits.
void Sampler::top_k(const float* logits, const Session& session, int k) {
  const auto insert = [&](int32_t id, float l) {
    if (static_cast<int>(candidates_.size()) == k) {
      const Candidate& worst = candidates_.back();
      if (!better(l, id, worst.logit, worst.id)) return;
      candidates_.pop_back();
    }
    auto pos = std::upper_bound(candidates_.begin(), candidates_.end(), Candidate{l, id},
                                [](const Candidate& x, const Candidate& y) { return better(x.logit, x.id, y.logit, y.id); });
    candidates_.insert(pos, Candidate{l, id});
  };
  for_each_penalized(logits, session, [&](int32_t base, int32_t end) {
    return static_cast<int>(candidates_.size()) < k || any_above(logits + base, end - base, candidates_.back().logit);
  }, insert);
}

int32_t Sampler::sample(const float* logits, const Session& session) {
  if (params_.temperature < kGreedyBelow) return greedy(logits, session);

  const int k = params_.top_k == 0 || params_.top_k > vocab_ ? vocab_ : params_.top_k;
  candidates_.clear();
  if (k == vocab_) {
    // top_k off: every token is a candidate; a full sort is what was asked for.
    for_each_penalized(logits, session, [](int32_t, int32_t) { return true; },
                       [&](int32_t id, float l) { candidates_.push_back(Candidate{l, id}); });
    std::sort(candidates_.begin(), candidates_.end(),
              [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); });
  } else {
    top_k(logits, session, k);
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
