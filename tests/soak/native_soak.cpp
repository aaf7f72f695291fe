// A long generation natively: N tokens (default 100,000) on one session, in
// windows of 10,000. Every token's logits must be finite, the peak RSS after
// all N must be within 1 MiB of the peak after the first 1,000 (the state is
// of constant size, so nothing may grow), and the last window's speed must
// not have fallen below a third of the first's (a per-token cost that grows
// with the position would fall far more; finer ratios belong to benchmarks,
// not to a test on a shared machine). Speed is over this thread's CPU time
// (the model runs on one thread), which other processes do not inflate.
// Prints the figures.
//
//   native_soak MODEL.bit2 [TOKENS]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/bitmamba.h"

namespace {

using namespace bitmamba;

constexpr int kWindow = 10000;
constexpr int kBaselineTokens = 1000;

// Peak resident set size of this process, in KiB (VmHWM).
long peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

bool logits_finite(const float* logits, int vocab) {
  double sum = 0;  // a NaN or an infinity anywhere makes the sum non-finite
  for (int i = 0; i < vocab; ++i) sum += logits[i];
  return std::isfinite(sum);
}

// Generates n tokens, continuing after an end-of-text; false on a non-finite
// logit or an error.
bool generate_tokens(Session& session, int n, uint64_t seed, long* done) {
  const int vocab = session.model().info().vocab_size;
  SamplingParams params;
  params.seed = seed;
  bool finite = true;
  for (int left = n; left > 0 && finite;) {
    GenerateStats stats;
    const Status st = generate(session, nullptr, 0, params, left, [&](int32_t) {
      finite = logits_finite(session.logits(), vocab);
      if (!finite) std::fprintf(stderr, "non-finite logits at position %llu\n",
                                static_cast<unsigned long long>(session.position()));
      return finite;
    }, &stats);
    if (!st.ok()) {
      std::fprintf(stderr, "generate: %s\n", st.message.c_str());
      return false;
    }
    left -= stats.generated_tokens;
    *done += stats.generated_tokens;
    ++params.seed;
  }
  return finite;
}

double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: native_soak MODEL [TOKENS]\n");
    return 2;
  }
  const long total = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 100000;
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> bytes(std::istreambuf_iterator<char>(in), {});
  std::unique_ptr<Model> model;
  Status st = Model::load(bytes.data(), bytes.size(), {}, &model);
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", argv[1], st.message.c_str());
    return 1;
  }
  Session session(*model);
  const int32_t prompt[4] = {464, 329, 318, 257};
  st = session.feed(prompt, 4);
  if (!st.ok()) {
    std::fprintf(stderr, "feed: %s\n", st.message.c_str());
    return 1;
  }

  long done = 0;
  double t = thread_cpu_seconds();
  if (!generate_tokens(session, kBaselineTokens, 1, &done)) return 1;
  const long rss_baseline = peak_rss_kib();
  std::printf("%6ld tokens: peak RSS %.2f MiB\n", done, rss_baseline / 1024.0);

  std::vector<double> speed;  // tokens/s per window
  while (done < total) {
    const int n = static_cast<int>(std::min<long>(kWindow - done % kWindow, total - done));
    if (!generate_tokens(session, n, static_cast<uint64_t>(done), &done)) return 1;
    if (done % kWindow == 0 || done == total) {
      speed.push_back((done % kWindow == 0 ? kWindow : done % kWindow) / (thread_cpu_seconds() - t));
      std::printf("%6ld tokens: %.0f tokens/CPU-s over the last window, peak RSS %.2f MiB\n", done, speed.back(),
                  peak_rss_kib() / 1024.0);
      t = thread_cpu_seconds();
    }
  }
  const long rss_end = peak_rss_kib();
  bool ok = true;
  if (rss_end - rss_baseline > 1024) {
    std::fprintf(stderr, "FAIL: peak RSS grew by %ld KiB between %d and %ld tokens\n", rss_end - rss_baseline,
                 kBaselineTokens, total);
    ok = false;
  }
  if (speed.size() >= 2 && speed.back() < speed.front() / 3) {
    std::fprintf(stderr, "FAIL: speed fell from %.0f to %.0f tokens/s\n", speed.front(), speed.back());
    ok = false;
  }
  std::printf("%s: %ld tokens, logits finite throughout, peak RSS %.2f -> %.2f MiB, %.0f -> %.0f tokens/CPU-s\n",
              ok ? "ok" : "FAIL", done, rss_baseline / 1024.0, rss_end / 1024.0, speed.empty() ? 0 : speed.front(),
              speed.empty() ? 0 : speed.back());
  return ok ? 0 : 1;
}
