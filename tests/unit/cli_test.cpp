// The CLI's contract: exit codes 0/1/2, errors on stderr, nothing but the
// generated output on stdout.
#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "core/tokenizer.h"
#include "test_models.h"

namespace bitmamba {
namespace {

struct Result {
  int exit_code;
  std::string out;
  std::string err;
};

Result cli(const std::string& args) {
  const std::string err_path = testing::temp_dir() + "/bitmamba_cli_err_" + std::to_string(::getpid());
  const std::string cmd = std::string(BITMAMBA_CLI) + " " + args + " 2>" + err_path;
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_path);
  r.err.assign(std::istreambuf_iterator<char>(e), {});
  std::remove(err_path.c_str());
  return r;
}

std::string small_model() { return testing::model_path(300, 64, 2, 4, 1); }

TEST(Cli, HelpAndUsageErrors) {
  EXPECT_EQ(cli("--help").exit_code, 0);
  EXPECT_NE(cli("--help").out.find("make-model"), std::string::npos);
  const Result none = cli("");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("usage"), std::string::npos);
  EXPECT_EQ(cli("frobnicate x").exit_code, 2);
  EXPECT_EQ(cli("run " + small_model()).exit_code, 2);  // neither --tokens nor --prompt
  EXPECT_EQ(cli("run " + small_model() + " --tokens 1 --bogus 3").exit_code, 2);
  EXPECT_EQ(cli("run " + small_model() + " --tokens '1 x 2'").exit_code, 2);
  EXPECT_EQ(cli("run " + small_model() + " --tokens 1 --temp nan").exit_code, 2);
  EXPECT_EQ(cli("run " + small_model() + " --tokens 1 --top-p 0").exit_code, 2);
  EXPECT_EQ(cli("run " + small_model() + " --tokens 1 --threads 0").exit_code, 2);
}

TEST(Cli, RuntimeErrorsExitOneWithAMessage) {
  const Result missing = cli("run /nonexistent/model.bin --tokens 1");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;
  EXPECT_TRUE(missing.out.empty());

  const Result oov = cli("run " + small_model() + " --tokens '1 300'");
  EXPECT_EQ(oov.exit_code, 1);
  EXPECT_NE(oov.err.find("token id 300"), std::string::npos) << oov.err;

  const std::string truncated = testing::temp_dir() + "/bitmamba_cli_trunc_" + std::to_string(::getpid()) + ".bin";
  {
    auto bytes = testing::read_file(small_model());
    bytes.resize(bytes.size() - 100);
    std::ofstream(truncated, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  const Result t = cli("run " + truncated + " --tokens 1");
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.err.find("lm_head"), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("truncated"), std::string::npos) << t.err;
  std::remove(truncated.c_str());
}

TEST(Cli, RunStreamsIdsToStdoutAndStatsToStderr) {
  const Result r = cli("run " + small_model() + " --tokens '1 2 3' --max-tokens 8 --seed 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int count = 0;
  for (size_t i = 0; i < r.out.size();) {
    size_t j = r.out.find_first_of(" \n", i);
    if (j == std::string::npos) j = r.out.size();
    if (j > i) ++count;
    i = j + 1;
  }
  EXPECT_EQ(count, 8) << r.out;
  EXPECT_NE(r.err.find("decode"), std::string::npos);
  EXPECT_NE(r.err.find("peak RSS"), std::string::npos);
}

TEST(Cli, TextPromptsGoThroughTheTokenizer) {
  const std::string gpt2_vocab = testing::model_path(50257, 32, 1, 2, 1);
  const Result r = cli("run " + gpt2_vocab + " --prompt 'Hello world' --max-tokens 5 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"text\":"), std::string::npos) << r.out;
  const Result bad = cli("run " + gpt2_vocab + " --prompt \"$(printf 'ok \\377')\" --max-tokens 5");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("invalid UTF-8 at byte 3"), std::string::npos) << bad.err;
  // A small-vocabulary model rejects GPT-2 ids it does not have.
  const Result small = cli("run " + small_model() + " --prompt 'Hello world' --max-tokens 5");
  EXPECT_EQ(small.exit_code, 1);
  EXPECT_NE(small.err.find("outside the vocabulary"), std::string::npos) << small.err;
}

// The ids of a --json run's "tokens":[…].
std::vector<int32_t> json_tokens(const std::string& out) {
  std::vector<int32_t> ids;
  const size_t begin = out.find("\"tokens\":[") + 10;
  const size_t end = out.find(']', begin);
  for (size_t i = begin; i < end;) {
    ids.push_back(std::stoi(out.substr(i)));
    i = out.find_first_of(",]", i) + 1;
  }
  return ids;
}

bool plain(std::string_view bytes) {
  for (char c : bytes)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != ' ') return false;
  return true;
}

TEST(Cli, StopStringSplitAcrossTokensEndsTheRunOnTheTokenThatCompletesIt) {
  const std::string model = testing::model_path(50257, 32, 1, 2, 1);
  const std::string run = "run " + model + " --prompt 'Once upon a time' --max-tokens 64 --seed 9 --json";
  const Result full = cli(run);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::vector<int32_t> ids = json_tokens(full.out);
  ASSERT_EQ(ids.size(), 64u) << full.out;
  // Two bytes from the end of one token and two from the start of the next,
  // not seen earlier in the text.
  const Tokenizer& tok = Tokenizer::gpt2();
  std::string text;
  for (size_t k = 0; k + 1 < ids.size(); ++k) {
    const std::string_view a = tok.token_bytes(ids[k]), b = tok.token_bytes(ids[k + 1]);
    text.append(a);
    if (a.size() < 2 || b.size() < 2) continue;
    const std::string stop = std::string(a.substr(a.size() - 2)) + std::string(b.substr(0, 2));
    if (!plain(stop) || (text + std::string(b.substr(0, 1))).find(stop) != std::string::npos) continue;
    const Result r = cli(run + " --stop '" + stop + "' --stop 'never seen 12345'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(json_tokens(r.out), std::vector<int32_t>(ids.begin(), ids.begin() + k + 2)) << stop;
    EXPECT_NE(r.out.find("\"stop_reason\":\"stop\",\"stop\":\"" + stop + "\""), std::string::npos) << r.out;
    EXPECT_NE(full.out.find("\"stop_reason\":\"max_tokens\""), std::string::npos) << full.out;
    return;
  }
  FAIL() << "no two neighbouring tokens of plain text in " << full.out;
}

TEST(Cli, SeedsTakeTheWhole64BitRange) {
  const std::string run = "run " + small_model() + " --tokens '1 2 3' --max-tokens 4 --seed ";
  EXPECT_EQ(cli(run + "18446744073709551615").exit_code, 0);
  EXPECT_NE(cli(run + "18446744073709551615").out, cli(run + "9223372036854775807").out);
  EXPECT_EQ(cli(run + "18446744073709551616").exit_code, 2);
  EXPECT_EQ(cli(run + "-1").exit_code, 2);
  EXPECT_EQ(cli(run + "+5").exit_code, 2);
}

TEST(Cli, EmptyStopStringIsAUsageError) {
  const Result r = cli("run " + small_model() + " --tokens 1 --stop ''");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("stop string is empty"), std::string::npos) << r.err;
}

TEST(Cli, PositionalFormMatchesRun) {
  const Result a = cli(small_model() + " '1 2 3' raw 0.7 1.1 0.05 0.9 40 12");
  const Result b = cli("run " + small_model() +
                       " --tokens '1 2 3' --temp 0.7 --repeat-penalty 1.1 --min-p 0.05 --top-p 0.9 --top-k 40 "
                       "--max-tokens 12");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(cli(small_model() + " '1 2 3' sideways 0.7 1.1 0.05 0.9 40 12").exit_code, 2);
}

TEST(Cli, LogitsWritesOneRowPerToken) {
  const std::string out = testing::temp_dir() + "/bitmamba_cli_logits_" + std::to_string(::getpid()) + ".f32";
  const Result r = cli("logits " + small_model() + " --tokens '5 6 7' --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::read_file(out).size(), 3u * 300u * 4u);
  std::remove(out.c_str());
}

TEST(Cli, MakeModelIsDeterministicPerSeed) {
  const std::string dir = testing::temp_dir() + "/bitmamba_cli_make_" + std::to_string(::getpid());
  ASSERT_EQ(cli("make-model --vocab 100 --d-model 32 --layers 1 --heads 2 --seed 9 --out " + dir + "a").exit_code, 0);
  ASSERT_EQ(cli("make-model --vocab 100 --d-model 32 --layers 1 --heads 2 --seed 9 --out " + dir + "b").exit_code, 0);
  ASSERT_EQ(cli("make-model --vocab 100 --d-model 32 --layers 1 --heads 2 --seed 10 --out " + dir + "c").exit_code, 0);
  EXPECT_EQ(testing::read_file(dir + "a"), testing::read_file(dir + "b"));
  EXPECT_NE(testing::read_file(dir + "a"), testing::read_file(dir + "c"));
  EXPECT_EQ(cli("make-model --vocab 100 --d-model 32 --layers 1 --heads 3 --out " + dir + "d").exit_code, 2);
  EXPECT_EQ(cli("make-model --preset huge --out " + dir + "e").exit_code, 2);
  for (const char* s : {"a", "b", "c"}) std::remove((dir + s).c_str());
}

}  // namespace
}  // namespace bitmamba
