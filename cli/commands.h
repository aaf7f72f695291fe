// One function per subcommand of the native CLI; each returns an exit code
// (cli/args.h). argv excludes the program and subcommand names.
#pragma once

namespace bitmamba::cli {

int cmd_run(int argc, char** argv);
// The reference engine's form: MODEL PROMPT MODE TEMP PENALTY MIN_P TOP_P TOP_K MAX_TOKENS.
int cmd_positional(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_bench(int argc, char** argv);
// MODEL --text-file F [--window N] [--json]: NLL, perplexities, bits per byte.
int cmd_perplexity(int argc, char** argv);
// MODEL --tasks F.jsonl [--json]: multiple-choice acc and acc_norm.
int cmd_score(int argc, char** argv);
int cmd_make_model(int argc, char** argv);
// IN OUT --embed f32|f16|q8: the embedding re-encoded, every other byte kept.
int cmd_convert(int argc, char** argv);
// GPT-2 tokenizer: tokenize [--text-file F | --jsonl F | TEXT]; detokenize ("IDS" | --jsonl F).
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);

}  // namespace bitmamba::cli
