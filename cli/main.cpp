// bitmamba: the CLI over the same core the browser runs, built natively and
// (run by scripts/bitmamba-node) to wasm for Node.
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"

namespace {

const char kUsage[] =
    "usage: bitmamba COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run MODEL (--tokens \"15496 11 314\" | --prompt TEXT) [--max-tokens N] [--temp T]\n"
    "      [--repeat-penalty P] [--min-p P] [--top-p P] [--top-k K] [--seed S]\n"
    "      [--stop TEXT]... [--threads N] [--isa NAME] [--json]\n"
    "      Generate; stream text (--prompt) or ids (--tokens) to stdout, stats to stderr.\n"
    "      --stop (repeatable): end after the token whose text completes TEXT.\n"
    "  logits MODEL --tokens \"...\" --out FILE [--threads N] [--isa NAME]\n"
    "      Feed the tokens one by one; write the logits after each as float32 rows.\n"
    "  bench MODEL [--threads N] [--prompt-tokens N] [--gen-tokens N] [--runs N] [--isa NAME] [--json]\n"
    "      Load time, time to first token, prefill and decode tok/s, peak RSS.\n"
    "  perplexity MODEL --text-file F [--window N] [--threads N] [--isa NAME] [--json]\n"
    "      Token count, total NLL, token and word perplexity, bits per byte of the text.\n"
    "  score MODEL --tasks F.jsonl [--threads N] [--isa NAME] [--json]\n"
    "      Multiple-choice accuracy (acc, acc_norm) over {context, choices, label} lines.\n"
    "  make-model (--preset tiny|255m|1b | --vocab V --d-model D --layers L --heads H)\n"
    "      [--seed S] --out FILE\n"
    "      Write a synthetic BIT2 model with random weights.\n"
    "  convert IN OUT --embed f32|f16|q8\n"
    "      Rewrite a model with its embedding as float32, half, or int8 with a scale per row.\n"
    "  tokenize [--text-file F | --jsonl F | TEXT]   print GPT-2 token ids\n"
    "  detokenize (\"IDS\" | --jsonl F)               print the text of ids\n"
    "\n"
    "  bitmamba MODEL PROMPT raw|tokenizer TEMP PENALTY MIN_P TOP_P TOP_K MAX_TOKENS\n"
    "      The reference engine's positional form.\n"
    "\n"
    "--isa: a kernel table (scalar, avx2, avx512 natively; simd128, relaxed, relaxed-dot-add\n"
    "in wasm); default: the best one here. All give the same results bit for bit.\n"
    "Defaults: temp 0.8, repeat-penalty 1.15, min-p 0.05, top-p 0.9, top-k 40, seed 0,\n"
    "max-tokens 200, threads 1. Exit status: 0 ok, 1 error, 2 usage.\n";

struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
};

const Command kCommands[] = {
    {"run", bitmamba::cli::cmd_run},
    {"logits", bitmamba::cli::cmd_logits},
    {"bench", bitmamba::cli::cmd_bench},
    {"perplexity", bitmamba::cli::cmd_perplexity},
    {"score", bitmamba::cli::cmd_score},
    {"make-model", bitmamba::cli::cmd_make_model},
    {"convert", bitmamba::cli::cmd_convert},
    {"tokenize", bitmamba::cli::cmd_tokenize},
    {"detokenize", bitmamba::cli::cmd_detokenize},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return bitmamba::cli::kExitUsage;
  }
  const std::string command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::fputs(kUsage, stdout);
    return bitmamba::cli::kExitOk;
  }
  for (const Command& c : kCommands)
    if (command == c.name) return c.run(argc - 2, argv + 2);
  if (argc == 10 && command.compare(0, 1, "-") != 0) return bitmamba::cli::cmd_positional(argc - 1, argv + 1);
  return bitmamba::cli::fail(bitmamba::cli::kExitUsage, "unknown command '" + command + "' (see bitmamba --help)");
}
