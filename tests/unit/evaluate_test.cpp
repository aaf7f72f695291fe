// core/evaluate.h and Session::feed with every token's logits. The figures
// themselves are checked against the NumPy reference (eval_reference).
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/evaluate.h"
#include "test_models.h"

namespace bitmamba {
namespace {

using testing::load_test_model;

TEST(Evaluate, FeedRowsEqualTokenByTokenLogits) {
  auto t = load_test_model(300, 64, 2, 4);
  const size_t vocab = 300;
  std::vector<int32_t> ids;
  for (int i = 0; i < 70; ++i) ids.push_back((i * 53) % 300);  // more than one prefill chunk
  Session batched(*t.model), single(*t.model);
  std::vector<float> rows;
  size_t next = 0;
  ASSERT_TRUE(batched.feed(ids.data(), ids.size(), [&](size_t i, const float* row) {
    EXPECT_EQ(i, next++);
    rows.insert(rows.end(), row, row + vocab);
  }).ok());
  ASSERT_EQ(next, ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(single.feed(&ids[i], 1).ok());
    ASSERT_EQ(std::vector<float>(single.logits(), single.logits() + vocab),
              std::vector<float>(rows.begin() + i * vocab, rows.begin() + (i + 1) * vocab))
        << "position " << i;
  }
  EXPECT_EQ(std::vector<float>(batched.logits(), batched.logits() + vocab),
            std::vector<float>(single.logits(), single.logits() + vocab));
}

TEST(Evaluate, LogSoftmaxAt) {
  const std::vector<float> logits = {1.5f, -2.0f, 0.25f, 7.0f, 7.0f};
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x));
  for (int i = 0; i < 5; ++i)
    EXPECT_NEAR(log_softmax_at(logits.data(), 5, i), logits[i] - std::log(sum), 1e-6) << i;
}

TEST(Evaluate, TopLogprobsAreTheHighestInOrder) {
  const std::vector<float> logits = {1.5f, -2.0f, 7.0f, 0.25f, 7.0f};
  const std::vector<TokenLogprob> top = top_logprobs(logits.data(), 5, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].token, 2);  // tie with 4: lower id first
  EXPECT_EQ(top[1].token, 4);
  EXPECT_EQ(top[2].token, 0);
  for (const TokenLogprob& t : top) EXPECT_EQ(t.logprob, log_softmax_at(logits.data(), 5, t.token));
  EXPECT_EQ(top_logprobs(logits.data(), 5, 99).size(), 5u);
  EXPECT_TRUE(top_logprobs(logits.data(), 5, 0).empty());
}

TEST(Evaluate, ContinuationNeedsAContextAndChecksIds) {
  auto t = load_test_model(300, 64, 2, 4);
  Session s(*t.model);
  const int32_t ids[] = {1, 2, 3};
  double ll = 0;
  EXPECT_EQ(continuation_loglik(s, ids, 3, &ll).code, ErrorCode::kBadState);
  ASSERT_TRUE(s.feed(ids, 1).ok());
  const int32_t bad[] = {4, 300};
  EXPECT_EQ(continuation_loglik(s, bad, 2, &ll).code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ll, 0.0);
  EXPECT_EQ(s.position(), 1u);  // nothing fed
  ASSERT_TRUE(continuation_loglik(s, ids + 1, 2, &ll).ok());
  EXPECT_LT(ll, 0.0);
  EXPECT_EQ(s.position(), 3u);
}

// What Python 3's len(re.split(r"\s+", text)) gives for each.
TEST(Evaluate, CountWordsIsPythonsSplitOnWhitespace) {
  EXPECT_EQ(count_words(""), 1u);
  EXPECT_EQ(count_words("one"), 1u);
  EXPECT_EQ(count_words("one two"), 2u);
  EXPECT_EQ(count_words(" one two \n"), 4u);
  EXPECT_EQ(count_words("a \t\r\n\v\f b"), 2u);
  EXPECT_EQ(count_words("a\x1c" "b\x1f" "c"), 3u);          // information separators
  EXPECT_EQ(count_words("a\u00a0b\u3000c\u2028d"), 4u);    // no-break, ideographic space, line separator
  EXPECT_EQ(count_words("a\u200bb\ufeffc"), 1u);           // zero-width space and BOM are not \s
  EXPECT_EQ(count_words("caf\u00e9 \U0001F600"), 2u);
}

TEST(Evaluate, EncodePairMovesTrailingWhitespace) {
  const Tokenizer& tok = Tokenizer::gpt2();
  std::vector<int32_t> ctx, cont, whole, want_ctx;
  ASSERT_TRUE(encode_pair(tok, "Answer: ", "yes", &ctx, &cont).ok());
  ASSERT_TRUE(tok.encode("Answer:", &want_ctx).ok());
  ASSERT_TRUE(tok.encode("Answer: yes", &whole).ok());
  EXPECT_EQ(ctx, want_ctx);
  EXPECT_EQ(cont, std::vector<int32_t>(whole.begin() + static_cast<long>(want_ctx.size()), whole.end()));
  EXPECT_EQ(cont, (std::vector<int32_t>{3763}));  // " yes"

  ASSERT_TRUE(encode_pair(tok, " \n", "Hi", &ctx, &cont).ok());  // empty once stripped
  EXPECT_EQ(ctx, (std::vector<int32_t>{kEndOfText}));
  std::vector<int32_t> want;
  ASSERT_TRUE(tok.encode(" \nHi", &want).ok());
  EXPECT_EQ(cont, want);
}

TEST(Evaluate, ScoreChoicesEqualsScoringEachFromScratch) {
  auto t = load_test_model(50257, 64, 2, 4);
  const Tokenizer& tok = Tokenizer::gpt2();
  const std::vector<std::string> choices = {" Paris", " London town", "x"};
  Session s(*t.model);
  std::vector<double> got;
  ASSERT_TRUE(score_choices(s, tok, "The capital of France is", choices, &got).ok());
  ASSERT_EQ(got.size(), 3u);
  for (size_t c = 0; c < choices.size(); ++c) {
    std::vector<int32_t> ctx, cont;
    ASSERT_TRUE(encode_pair(tok, "The capital of France is", choices[c], &ctx, &cont).ok());
    Session fresh(*t.model);
    ASSERT_TRUE(fresh.feed(ctx.data(), ctx.size()).ok());
    double want = 0;
    ASSERT_TRUE(continuation_loglik(fresh, cont.data(), cont.size(), &want).ok());
    EXPECT_EQ(got[c], want) << choices[c];
  }
}

TEST(Evaluate, PerplexityWindowsAreIndependentPasses) {
  auto t = load_test_model(50257, 64, 2, 4);
  std::vector<int32_t> ids;
  for (int i = 0; i < 150; ++i) ids.push_back((i * 7919) % 50257);
  Session s(*t.model);
  PerplexityResult whole, windowed, part;
  ASSERT_TRUE(perplexity(s, ids.data(), ids.size(), {}, &whole).ok());
  EXPECT_EQ(whole.tokens, 150u);
  EXPECT_GT(whole.nll, 0.0);
  PerplexityOptions options;
  options.window = 100;
  ASSERT_TRUE(perplexity(s, ids.data(), ids.size(), options, &windowed).ok());
  EXPECT_EQ(windowed.tokens, 150u);
  double sum = 0;
  ASSERT_TRUE(perplexity(s, ids.data(), 100, {}, &part).ok());
  sum += part.nll;
  ASSERT_TRUE(perplexity(s, ids.data() + 100, 50, {}, &part).ok());
  sum += part.nll;
  EXPECT_EQ(windowed.nll, sum);
  EXPECT_NE(windowed.nll, whole.nll);
}

TEST(Evaluate, PerplexityNeedsEndOfTextInTheVocabulary) {
  auto t = load_test_model(300, 64, 2, 4);
  Session s(*t.model);
  const int32_t ids[] = {1, 2};
  PerplexityResult r;
  EXPECT_EQ(perplexity(s, ids, 2, {}, &r).code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitmamba
