// `perplexity`: how well the model predicts a text (docs/evaluation.md).
// Token, word and byte figures are lm-eval-harness's, so a WikiText-2 run
// is comparable with the model card's.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_loader.h"
#include "cli/text_io.h"
#include "core/evaluate.h"

namespace bitmamba::cli {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Figures {
  PerplexityResult r;
  size_t words = 0;
  size_t bytes = 0;
  double tokens_per_s = 0;
};

void print_figures(const Figures& f, bool json) {
  const double n = static_cast<double>(f.r.tokens);
  const double ppl = std::exp(f.r.nll / n);
  const double word_ppl = std::exp(f.r.nll / static_cast<double>(f.words));
  const double bits_per_byte = f.r.nll / static_cast<double>(f.bytes) / std::log(2.0);
  if (json) {
    std::printf(
        "{\"tokens\":%zu,\"nll\":%.17g,\"ppl\":%.17g,\"word_ppl\":%.17g,\"bits_per_byte\":%.17g,"
        "\"words\":%zu,\"bytes\":%zu,\"tokens_per_s\":%.1f}\n",
        f.r.tokens, f.r.nll, ppl, word_ppl, bits_per_byte, f.words, f.bytes, f.tokens_per_s);
  } else {
    std::printf("tokens         %zu\n", f.r.tokens);
    std::printf("nll            %.6f nats\n", f.r.nll);
    std::printf("ppl            %.6f\n", ppl);
    std::printf("word_ppl       %.6f (%zu words)\n", word_ppl, f.words);
    std::printf("bits_per_byte  %.6f (%zu bytes)\n", bits_per_byte, f.bytes);
  }
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  Args args(argc, argv, {"json"});
  args.reject_unknown({"text-file", "threads", "isa", "window", "json"});
  const LoadFlags load_flags = parse_load_flags(args);
  const int64_t window = args.get_int("window", 0, 1, int64_t{1} << 40);
  if (!args.ok()) return fail(kExitUsage, "perplexity: " + args.error());
  if (args.positionals().size() != 1 || !args.has("text-file"))
    return fail(kExitUsage, "perplexity: usage: perplexity MODEL --text-file FILE [--window N] [--json]");

  std::string text, error;
  if (!read_file(args.get("text-file", ""), &text, &error)) return fail(kExitError, "perplexity: " + error);
  std::vector<int32_t> ids;
  if (!encode_text(text, &ids, &error)) return fail(kExitError, "perplexity: " + error);
  if (ids.empty()) return fail(kExitError, "perplexity: the text has no tokens");

  LoadedModel lm;
  Status st = load_model(args.positionals()[0], load_flags, &lm);
  if (!st.ok()) return fail(kExitError, st.message);
  Session session(*lm.model);
  PerplexityOptions options;
  options.window = static_cast<size_t>(window);
  const auto t0 = Clock::now();
  options.on_progress = [&](size_t done, size_t total) {
    std::fprintf(stderr, "\rperplexity: %zu/%zu tokens, %.1f tok/s", done, total,
                 static_cast<double>(done) / seconds_since(t0));
    return true;
  };
  Figures f;
  st = perplexity(session, ids.data(), ids.size(), options, &f.r);
  std::fputc('\n', stderr);
  if (!st.ok()) return fail(kExitError, "perplexity: " + st.message);
  f.tokens_per_s = static_cast<double>(f.r.tokens) / seconds_since(t0);
  f.words = count_words(text);
  f.bytes = text.size();
  print_figures(f, args.has("json"));
  return kExitOk;
}

}  // namespace bitmamba::cli
