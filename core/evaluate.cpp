#include "core/evaluate.h"

#include <algorithm>
#include <string>

#include "kernels/mathfn.h"

namespace bitmamba {

namespace {

// Tokens fed between progress reports: 16 prefill chunks.
constexpr size_t kProgressTokens = 1024;

// log(s) for s >= 1 in double, from the float log of our own: libm logs
// differ across platforms in the last bit. log(s) = log(f) + log(s / f)
// with f = float(s); s / f - 1 is below 2^-24, where log1p(r) = r - r^2/2
// is exact to double precision.
double log_sum(double s) {
  const float f = static_cast<float>(s);
  const double r = s / static_cast<double>(f) - 1.0;
  return static_cast<double>(log_f32(f)) + (r - 0.5 * r * r);
}

}  // namespace

namespace {

// logsumexp(logits) - max, and max: log p(i) = logits[i] - max - the first.
double log_norm(const float* logits, int vocab, float* max_out) {
  const float max = *std::max_element(logits, logits + vocab);
  // kLanes independent sums in a fixed order, the same on every platform (a
  // vectorised single sum would need reassociation, which changes bits).
  // GCC 12 does not vectorise this loop yet: exp_f32's clamps stay branches.
  constexpr int kLanes = 8;
  double lane[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= vocab; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(exp_f32(logits[i + l] - max));
  double sum = 0;  // >= 1: the maximum contributes e^0
  for (; i < vocab; ++i) sum += static_cast<double>(exp_f32(logits[i] - max));
  for (const double s : lane) sum += s;
  *max_out = max;
  return log_sum(sum);
}

}  // namespace

double log_softmax_at(const float* logits, int vocab, int32_t token) {
  float max;
  const double norm = log_norm(logits, vocab, &max);
  return static_cast<double>(logits[token] - max) - norm;
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int vocab, int k) {
  k = std::max(0, std::min(k, vocab));
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) ids[static_cast<size_t>(i)] = i;
  const auto higher = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), higher);
  float max;
  const double norm = log_norm(logits, vocab, &max);
  std::vector<TokenLogprob> top;
  for (auto id = ids.begin(); id != ids.begin() + k; ++id)
    top.push_back({*id, static_cast<double>(logits[*id] - max) - norm});
  return top;
}

Status continuation_loglik(Session& session, const int32_t* tokens, size_t n, double* loglik) {
  if (n == 0) return Status::Ok();
  if (session.logits() == nullptr)
    return make_error(ErrorCode::kBadState, "scoring needs a context: feed at least one token first");
  const int vocab = session.model().info().vocab_size;
  if (tokens == nullptr) return make_error(ErrorCode::kInvalidArgument, "tokens are null");
  if (tokens[0] < 0 || tokens[0] >= vocab)  // feed checks the rest before it changes anything
    return make_error(ErrorCode::kInvalidArgument,
                      "token id " + std::to_string(tokens[0]) + " at position 0 is outside the vocabulary 0.." +
                          std::to_string(vocab - 1));
  double sum = log_softmax_at(session.logits(), vocab, tokens[0]);
  // The logits after tokens[i] predict tokens[i + 1]; those after the last
  // one stay in the session for whatever follows.
  const Status st = session.feed(tokens, n, [&](size_t i, const float* row) {
    if (i + 1 < n) sum += log_softmax_at(row, vocab, tokens[i + 1]);
  });
  if (st.ok()) *loglik += sum;
  return st;
}

Status perplexity(Session& session, const int32_t* tokens, size_t n, const PerplexityOptions& options,
                  PerplexityResult* result) {
  *result = PerplexityResult();
  const size_t window = options.window > 0 ? options.window : n;
  for (size_t start = 0; start < n; start += window) {
    session.reset();
    const int32_t eot = kEndOfText;
    Status st = session.feed(&eot, 1);
    if (!st.ok()) return st;
    const size_t end = std::min(n, start + window);
    for (size_t at = start; at < end;) {
      const size_t count = std::min(end - at, kProgressTokens);
      double loglik = 0;
      st = continuation_loglik(session, tokens + at, count, &loglik);
      if (!st.ok()) return st;
      result->nll -= loglik;
      result->tokens += count;
      at += count;
      if (options.on_progress && !options.on_progress(result->tokens, n)) return Status::Ok();
    }
  }
  return Status::Ok();
}

namespace {

// Python 3's \s for str patterns (str.isspace): ASCII \t\n\v\f\r, the
// information separators U+001C..U+001F, and Unicode's Zs, B and S spaces.
bool python_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
  switch (cp) {
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200a;
  }
}

// The code point at text[i] and its length; a stray byte counts as itself.
uint32_t utf8_at(std::string_view text, size_t i, size_t* len) {
  const auto b = static_cast<uint8_t>(text[i]);
  const size_t want = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
  if (want == 1 || i + want > text.size()) {
    *len = 1;
    return b;
  }
  uint32_t cp = b & (0x7f >> want);
  for (size_t k = 1; k < want; ++k) cp = (cp << 6) | (static_cast<uint8_t>(text[i + k]) & 0x3f);
  *len = want;
  return cp;
}

}  // namespace

size_t count_words(std::string_view text) {
  size_t words = 1;
  bool in_space = false;
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    const bool space = python_space(utf8_at(text, i, &len));
    if (space && !in_space) ++words;
    in_space = space;
  }
  return words;
}

Status encode_pair(const Tokenizer& tok, std::string_view context, std::string_view continuation,
                   std::vector<int32_t>* context_ids, std::vector<int32_t>* continuation_ids) {
  size_t kept = 0;  // context.rstrip(): the end of its last non-space character
  for (size_t i = 0, len = 0; i < context.size(); i += len)
    if (!python_space(utf8_at(context, i, &len))) kept = i + len;
  const std::string moved = std::string(context.substr(kept)) + std::string(continuation);
  if (kept == 0) {
    *context_ids = {kEndOfText};
    return tok.encode(moved, continuation_ids);
  }
  std::vector<int32_t> whole;
  Status st = tok.encode(std::string(context.substr(0, kept)) + moved, &whole);
  if (st.ok()) st = tok.encode(context.substr(0, kept), context_ids);
  if (!st.ok()) return st;
  const size_t skip = std::min(context_ids->size(), whole.size());
  continuation_ids->assign(whole.begin() + static_cast<std::ptrdiff_t>(skip), whole.end());
  return Status::Ok();
}

Status score_choices(Session& session, const Tokenizer& tok, std::string_view context,
                     const std::vector<std::string>& choices, std::vector<double>* logliks) {
  std::vector<std::vector<int32_t>> conts(choices.size());
  std::vector<int32_t> ctx;
  for (size_t c = 0; c < choices.size(); ++c) {
    const Status st = encode_pair(tok, context, choices[c], &ctx, &conts[c]);
    if (!st.ok()) return st;
  }
  session.reset();
  Status st = session.feed(ctx.data(), ctx.size());
  if (!st.ok()) return st;
  const std::vector<uint8_t> snapshot = session.snapshot();
  logliks->assign(choices.size(), 0.0);
  for (size_t c = 0; c < choices.size() && st.ok(); ++c) {
    st = session.restore(snapshot.data(), snapshot.size());
    if (st.ok()) st = continuation_loglik(session, conts[c].data(), conts[c].size(), &(*logliks)[c]);
  }
  return st;
}

}  // namespace bitmamba
