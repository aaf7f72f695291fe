// `score`: zero-shot multiple-choice accuracy, as lm-eval-harness computes
// it (docs/evaluation.md): the choice with the highest log-likelihood
// (acc), or log-likelihood per UTF-8 byte of the choice (acc_norm).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_loader.h"
#include "cli/score_tasks.h"
#include "cli/text_io.h"
#include "core/evaluate.h"

namespace bitmamba::cli {

namespace {

struct ItemResult {
  std::vector<double> loglik;
  size_t pred = 0;
  size_t pred_norm = 0;
};

// The first maximum, as numpy.argmax picks.
ItemResult judge(const ScoreItem& item, std::vector<double> loglik) {
  ItemResult r;
  r.loglik = std::move(loglik);
  double best_norm = 0;
  for (size_t c = 0; c < r.loglik.size(); ++c) {
    const double norm = r.loglik[c] / static_cast<double>(item.choices[c].size());
    if (r.loglik[c] > r.loglik[r.pred]) r.pred = c;
    if (c == 0 || norm > best_norm) {
      best_norm = norm;
      r.pred_norm = c;
    }
  }
  return r;
}

void print_json(const std::vector<ItemResult>& results, double acc, double acc_norm) {
  std::printf("{\"items\":%zu,\"acc\":%.17g,\"acc_norm\":%.17g,\"results\":[", results.size(), acc, acc_norm);
  for (size_t i = 0; i < results.size(); ++i) {
    std::printf("%s{\"loglik\":[", i ? "," : "");
    for (size_t c = 0; c < results[i].loglik.size(); ++c) std::printf("%s%.17g", c ? "," : "", results[i].loglik[c]);
    std::printf("],\"pred\":%zu,\"pred_norm\":%zu}", results[i].pred, results[i].pred_norm);
  }
  std::printf("]}\n");
}

}  // namespace

int cmd_score(int argc, char** argv) {
  Args args(argc, argv, {"json"});
  args.reject_unknown({"tasks", "threads", "isa", "json"});
  const LoadFlags load_flags = parse_load_flags(args);
  if (!args.ok()) return fail(kExitUsage, "score: " + args.error());
  if (args.positionals().size() != 1 || !args.has("tasks"))
    return fail(kExitUsage, "score: usage: score MODEL --tasks FILE.jsonl [--json]");

  const std::string path = args.get("tasks", "");
  std::string data, error;
  std::vector<ScoreItem> items;
  if (!read_file(path, &data, &error) || !parse_score_items(path, data, &items, &error))
    return fail(kExitError, "score: " + error);

  LoadedModel lm;
  Status st = load_model(args.positionals()[0], load_flags, &lm);
  if (!st.ok()) return fail(kExitError, st.message);
  Session session(*lm.model);
  std::vector<ItemResult> results;
  size_t right = 0, right_norm = 0;
  for (const ScoreItem& item : items) {
    std::vector<double> loglik;
    st = score_choices(session, Tokenizer::gpt2(), item.context, item.choices, &loglik);
    if (!st.ok()) return fail(kExitError, "score: " + path + " line " + std::to_string(item.line) + ": " + st.message);
    results.push_back(judge(item, std::move(loglik)));
    right += results.back().pred == item.label;
    right_norm += results.back().pred_norm == item.label;
    std::fprintf(stderr, "\rscore: %zu/%zu items", results.size(), items.size());
  }
  std::fputc('\n', stderr);
  const double n = static_cast<double>(items.size());
  if (args.has("json")) {
    print_json(results, static_cast<double>(right) / n, static_cast<double>(right_norm) / n);
  } else {
    std::printf("items     %zu\n", items.size());
    std::printf("acc       %.6f (%zu right)\n", static_cast<double>(right) / n, right);
    std::printf("acc_norm  %.6f (%zu right)\n", static_cast<double>(right_norm) / n, right_norm);
  }
  return kExitOk;
}

}  // namespace bitmamba::cli
