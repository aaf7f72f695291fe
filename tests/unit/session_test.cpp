#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "core/bitmamba.h"
#include "test_models.h"

namespace bitmamba {
namespace {

using testing::load_test_model;

std::vector<float> logits_copy(const Session& s) {
  const int vocab = s.model().info().vocab_size;
  return std::vector<float>(s.logits(), s.logits() + vocab);
}

std::vector<int32_t> run(Session& s, const std::vector<int32_t>& prompt, int n, uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  std::vector<int32_t> out;
  const Status st = generate(s, prompt.data(), prompt.size(), p, n, [&](int32_t t) {
    out.push_back(t);
    return true;
  }, nullptr);
  EXPECT_TRUE(st.ok()) << st.message;
  return out;
}

TEST(Session, PrefillEqualsTokenByToken) {
  auto t = load_test_model(300, 64, 2, 4);
  std::vector<int32_t> prompt;
  for (int i = 0; i < 70; ++i) prompt.push_back((i * 37) % 300);  // longer than one prefill chunk
  Session batched(*t.model), single(*t.model);
  ASSERT_TRUE(batched.feed(prompt.data(), prompt.size()).ok());
  for (int32_t id : prompt) ASSERT_TRUE(single.feed(&id, 1).ok());
  EXPECT_EQ(logits_copy(batched), logits_copy(single));
  EXPECT_EQ(batched.position(), 70u);
}

TEST(Session, SnapshotRestoreGivesIdenticalContinuation) {
  auto t = load_test_model(300, 64, 2, 4);
  Session a(*t.model);
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  ASSERT_TRUE(a.feed(prompt.data(), prompt.size()).ok());
  const std::vector<uint8_t> snap = a.snapshot();
  EXPECT_EQ(snap.size(), a.snapshot_size());
  const std::vector<int32_t> first = run(a, {}, 24, 7);

  Session b(*t.model);
  ASSERT_TRUE(b.feed(prompt.data(), 2).ok());  // some other state, to be overwritten
  ASSERT_TRUE(b.restore(snap.data(), snap.size()).ok());
  EXPECT_EQ(b.position(), 5u);
  EXPECT_EQ(run(b, {}, 24, 7), first);
  // And the original session restored into itself.
  ASSERT_TRUE(a.restore(snap.data(), snap.size()).ok());
  EXPECT_EQ(run(a, {}, 24, 7), first);
}

TEST(Session, RestoreRejectsForeignSnapshots) {
  auto t = load_test_model(300, 64, 2, 4);
  auto other = load_test_model(300, 64, 1, 4);
  Session a(*t.model), b(*other.model);
  ASSERT_TRUE(a.feed(std::vector<int32_t>{1, 2}.data(), 2).ok());
  std::vector<uint8_t> snap = a.snapshot();
  EXPECT_EQ(b.restore(snap.data(), snap.size()).code, ErrorCode::kBadState);
  std::vector<uint8_t> cut(snap.begin(), snap.end() - 1);
  EXPECT_EQ(a.restore(cut.data(), cut.size()).code, ErrorCode::kBadState);
  snap[0] ^= 0xff;
  EXPECT_EQ(a.restore(snap.data(), snap.size()).code, ErrorCode::kBadState);
  EXPECT_EQ(a.position(), 2u);  // untouched by the failed restores
}

// Snapshots of the right size and shape but with impossible contents (found
// by the session_restore fuzzer): a has_logits flag other than 0/1, and a
// seen-token set with ids past the vocabulary, which the sampler would read.
TEST(Session, RestoreRejectsImpossibleContents) {
  auto t = load_test_model(300, 64, 1, 4);  // 300 ids: 5 words, 20 spare bits
  Session a(*t.model);
  ASSERT_TRUE(a.feed(std::vector<int32_t>{1, 299}.data(), 2).ok());
  const std::vector<uint8_t> good = a.snapshot();
  const size_t has_logits_at = 8 + 16 + 8;
  const size_t seen_end = good.size() - 300 * sizeof(float);

  std::vector<uint8_t> bad = good;
  bad[has_logits_at] = 2;
  Status st = a.restore(bad.data(), bad.size());
  EXPECT_EQ(st.code, ErrorCode::kBadState);
  EXPECT_NE(st.message.find("has_logits"), std::string::npos) << st.message;

  bad = good;
  bad[seen_end - 1] |= 0x80;  // id 319
  st = a.restore(bad.data(), bad.size());
  EXPECT_EQ(st.code, ErrorCode::kBadState);
  EXPECT_NE(st.message.find("outside the vocabulary"), std::string::npos) << st.message;

  EXPECT_EQ(a.snapshot(), good);  // untouched by the failed restores
  ASSERT_TRUE(a.restore(good.data(), good.size()).ok());
}

TEST(Session, ResetStartsOver) {
  auto t = load_test_model(300, 64, 2, 4);
  Session a(*t.model), fresh(*t.model);
  const std::vector<int32_t> p = {9, 8, 7};
  ASSERT_TRUE(a.feed(p.data(), p.size()).ok());
  a.reset();
  EXPECT_EQ(a.logits(), nullptr);
  EXPECT_FALSE(a.seen(9));
  ASSERT_TRUE(a.feed(p.data(), 1).ok());
  ASSERT_TRUE(fresh.feed(p.data(), 1).ok());
  EXPECT_EQ(logits_copy(a), logits_copy(fresh));
}

TEST(Session, OutOfRangeTokenIsAnErrorAndChangesNothing) {
  auto t = load_test_model(300, 64, 2, 4);
  Session a(*t.model);
  ASSERT_TRUE(a.feed(std::vector<int32_t>{5}.data(), 1).ok());
  const std::vector<float> before = logits_copy(a);
  for (int32_t bad : {-1, 300, 50257, INT32_MAX}) {
    const std::vector<int32_t> ids = {1, bad};
    const Status st = a.feed(ids.data(), ids.size());
    EXPECT_EQ(st.code, ErrorCode::kInvalidArgument);
    EXPECT_NE(st.message.find(std::to_string(bad)), std::string::npos) << st.message;
  }
  EXPECT_EQ(a.position(), 1u);
  EXPECT_EQ(logits_copy(a), before);
}

TEST(Session, SessionsShareAModelIndependently) {
  auto t = load_test_model(300, 64, 2, 4);
  Session a(*t.model), b(*t.model), c(*t.model);
  const std::vector<int32_t> p = {3, 1, 4, 1, 5};
  ASSERT_TRUE(a.feed(p.data(), p.size()).ok());
  ASSERT_TRUE(b.feed(std::vector<int32_t>{2, 7}.data(), 2).ok());
  ASSERT_TRUE(c.feed(p.data(), p.size()).ok());
  EXPECT_EQ(logits_copy(a), logits_copy(c));
  EXPECT_NE(logits_copy(a), logits_copy(b));
}

TEST(Session, GenerateIsDeterministicPerSeedAndStopsOnRequest) {
  auto t = load_test_model(300, 64, 2, 4);
  Session a(*t.model), b(*t.model);
  const std::vector<int32_t> p = {10, 20, 30};
  const auto x = run(a, p, 20, 123);
  const auto y = run(b, p, 20, 123);
  EXPECT_EQ(x, y);
  b.reset();
  EXPECT_NE(run(b, p, 20, 124), x);

  Session c(*t.model);
  int calls = 0;
  SamplingParams params;
  GenerateStats stats;
  ASSERT_TRUE(generate(c, p.data(), p.size(), params, 50, [&](int32_t) { return ++calls < 3; }, &stats).ok());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(stats.generated_tokens, 3);
  EXPECT_EQ(c.position(), 6u);  // prompt + every generated token
}

TEST(Session, GenerateRejectsBadParams) {
  auto t = load_test_model(300, 64, 2, 4);
  Session s(*t.model);
  const std::vector<int32_t> p = {1};
  SamplingParams bad;
  bad.temperature = std::nanf("");
  EXPECT_EQ(generate(s, p.data(), 1, bad, 5, nullptr, nullptr).code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.position(), 0u);
  EXPECT_EQ(generate(s, nullptr, 0, SamplingParams{}, 5, nullptr, nullptr).code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitmamba
