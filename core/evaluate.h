// Log-likelihoods over a session: what perplexity and multiple-choice
// scoring (docs/evaluation.md) are built from, shared by the CLI and wasm.
//
//   bitmamba::Session session(*model);
//   bitmamba::PerplexityResult r;
//   bitmamba::Status st = bitmamba::perplexity(session, ids.data(), ids.size(), {}, &r);
//   double ppl = std::exp(r.nll / r.tokens);
//
// Sums are in double, each term computed the same way on every platform
// (kernels/mathfn.h), so native and wasm give the same bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bitmamba.h"
#include "core/tokenizer.h"

namespace bitmamba {

// log softmax(logits)[token]: logits[token] - logsumexp(logits).
double log_softmax_at(const float* logits, int vocab, int32_t token);

struct TokenLogprob {
  int32_t token;
  double logprob;
};

// The k most likely tokens under softmax(logits), most likely first (ties:
// lower id first), with their log-probabilities; k is clamped to the vocab.
std::vector<TokenLogprob> top_logprobs(const float* logits, int vocab, int k);

// Adds log p(tokens[i] | context, tokens[..i]) for every i to *loglik and
// feeds the tokens. The session must hold logits (the context was fed).
Status continuation_loglik(Session& session, const int32_t* tokens, size_t n, double* loglik);

struct PerplexityOptions {
  // > 0: the state is reset every `window` tokens of the text, each window
  // scored after its own <|endoftext|>. 0: one pass over the whole text.
  size_t window = 0;
  // Called after each chunk with the tokens scored so far; return false to stop.
  std::function<bool(size_t done, size_t total)> on_progress;
};

struct PerplexityResult {
  size_t tokens = 0;  // tokens scored (all of the text's, unless stopped)
  double nll = 0;     // total negative log-likelihood, nats
};

// Scores the text's tokens after a leading <|endoftext|> (kEndOfText), so
// every token is predicted. Resets the session first.
Status perplexity(Session& session, const int32_t* tokens, size_t n, const PerplexityOptions& options,
                  PerplexityResult* result);

// lm-eval-harness's tokens for a (context, continuation) pair: trailing
// whitespace of the context moves to the continuation, whose tokens are then
// those of context + continuation past the context's. A context that is
// empty (after the move) is <|endoftext|>.
Status encode_pair(const Tokenizer& tok, std::string_view context, std::string_view continuation,
                   std::vector<int32_t>* context_ids, std::vector<int32_t>* continuation_ids);

// The log-likelihood of each choice after the context (encode_pair's
// tokens): the context is fed once and each choice scored from a snapshot.
Status score_choices(Session& session, const Tokenizer& tok, std::string_view context,
                     const std::vector<std::string>& choices, std::vector<double>* logliks);

// len(re.split(r"\s+", text)) in Python 3: one more than the number of
// whitespace runs (an empty text is 1 word). Text is UTF-8.
size_t count_words(std::string_view text);

}  // namespace bitmamba
