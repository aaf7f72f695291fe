// `run` and the reference engine's positional form.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_loader.h"
#include "cli/text_io.h"
#include "core/stop_strings.h"

namespace bitmamba::cli {

namespace {

struct RunOptions {
  std::string model_path;
  std::vector<int32_t> prompt_ids;
  bool text_mode = false;  // prompt came as text: stream text out
  SamplingParams params;
  int max_tokens = 200;
  LoadFlags load;
  bool json = false;
  std::vector<std::string> stops;  // --stop, repeatable
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// Streams one token to stdout: its text (--prompt) or its id (--tokens).
void print_token(const RunOptions& o, int32_t token, size_t count, TextStream* text) {
  if (o.text_mode) {
    std::string piece;
    if (text->push(token, &piece)) std::fwrite(piece.data(), 1, piece.size(), stdout);
  } else {
    std::printf("%s%d", count > 1 ? " " : "", token);
  }
  std::fflush(stdout);
}

const char* stop_reason(const GenerateStats& stats, int stopped_by) {
  if (stopped_by >= 0) return "stop";
  return stats.stopped_at_eos ? "eos" : "max_tokens";
}

int run_generation(const RunOptions& o) {
  Status st = validate(o.params);
  if (!st.ok()) return fail(kExitUsage, st.message);
  LoadedModel lm;
  st = load_model(o.model_path, o.load, &lm);
  if (!st.ok()) return fail(kExitError, st.message);

  StopStrings stops;
  st = StopStrings::make(o.stops, &stops);
  if (!st.ok()) return fail(kExitUsage, "run: --stop: " + st.message);

  Session session(*lm.model);
  std::vector<int32_t> generated;
  TextStream text;                                  // decodes ids to UTF-8 safe pieces
  TextStream stop_text;                             // the same pieces, for the stop strings
  int stopped_by = -1;                              // index of the stop string that ended the run
  GenerateStats stats;
  st = generate(session, o.prompt_ids.data(), o.prompt_ids.size(), o.params, o.max_tokens,
                [&](int32_t token) {
                  generated.push_back(token);
                  std::string piece;
                  if (!stops.empty() && stop_text.push(token, &piece)) stopped_by = stops.push(piece);
                  if (!o.json) print_token(o, token, generated.size(), &text);
                  return stopped_by < 0;
                },
                &stats);
  if (!st.ok()) return fail(kExitError, st.message);

  const double prefill_tps = stats.prefill_ms > 0 ? stats.prompt_tokens * 1000.0 / stats.prefill_ms : 0;
  const double decode_tps = stats.decode_ms > 0 ? stats.generated_tokens * 1000.0 / stats.decode_ms : 0;
  if (o.json) {
    std::string ids;
    for (size_t i = 0; i < generated.size(); ++i) ids += (i ? "," : "") + std::to_string(generated[i]);
    std::string text_field;
    if (o.text_mode) {
      std::string all;
      if (decode_all(generated, &all)) text_field = ",\"text\":\"" + json_escape(all) + "\"";
    }
    std::string stop_field;
    if (stopped_by >= 0) stop_field = ",\"stop\":\"" + json_escape(o.stops[stopped_by]) + "\"";
    std::printf(
        "{\"tokens\":[%s]%s,\"stop_reason\":\"%s\"%s,\"stats\":{\"load_ms\":%.2f,\"prompt_tokens\":%d,\"prefill_ms\":%.3f,"
        "\"generated_tokens\":%d,\"decode_ms\":%.3f,\"prefill_tok_s\":%.1f,\"decode_tok_s\":%.1f,"
        "\"peak_rss_mib\":%.1f,\"isa\":\"%s\",\"threads\":%d}}\n",
        ids.c_str(), text_field.c_str(), stop_reason(stats, stopped_by), stop_field.c_str(), lm.load_ms, stats.prompt_tokens, stats.prefill_ms, stats.generated_tokens,
        stats.decode_ms, prefill_tps, decode_tps, peak_rss_mib(), lm.model->isa(), lm.model->threads());
  } else {
    if (o.text_mode) {
      const std::string rest = text.flush();
      std::fwrite(rest.data(), 1, rest.size(), stdout);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "load %.1f ms | prefill %d tok, %.1f tok/s | decode %d tok, %.1f tok/s | peak RSS %.1f MiB | %s, %d "
               "thread%s\n",
               lm.load_ms, stats.prompt_tokens, prefill_tps, stats.generated_tokens, decode_tps, peak_rss_mib(),
               lm.model->isa(), lm.model->threads(), lm.model->threads() == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Args args(argc, argv, {"json"});
  args.reject_unknown({"tokens", "prompt", "max-tokens", "temp", "repeat-penalty", "min-p", "top-p", "top-k", "seed",
                       "threads", "isa", "json", "stop"});
  RunOptions o;
  if (args.positionals().size() != 1) return fail(kExitUsage, "run: expected one MODEL path (see bitmamba --help)");
  o.model_path = args.positionals()[0];
  o.params.temperature = args.get_float("temp", o.params.temperature);
  o.params.repetition_penalty = args.get_float("repeat-penalty", o.params.repetition_penalty);
  o.params.min_p = args.get_float("min-p", o.params.min_p);
  o.params.top_p = args.get_float("top-p", o.params.top_p);
  o.params.top_k = static_cast<int>(args.get_int("top-k", o.params.top_k, 0, 1 << 20));
  o.params.seed = args.get_u64("seed", 0);
  o.max_tokens = static_cast<int>(args.get_int("max-tokens", o.max_tokens, 0, 1 << 24));
  o.load = parse_load_flags(args);
  o.json = args.has("json");
  o.stops = args.get_all("stop");
  if (!args.ok()) return fail(kExitUsage, "run: " + args.error());
  if (args.has("tokens") == args.has("prompt")) return fail(kExitUsage, "run: give exactly one of --tokens and --prompt");
  std::string error;
  if (args.has("tokens")) {
    if (!parse_token_list(args.get("tokens", ""), &o.prompt_ids, &error)) return fail(kExitUsage, "run: " + error);
  } else {
    o.text_mode = true;
    if (!encode_text(args.get("prompt", ""), &o.prompt_ids, &error)) return fail(kExitError, "run: " + error);
  }
  if (o.prompt_ids.empty()) return fail(kExitUsage, "run: the prompt is empty");
  return run_generation(o);
}

int cmd_positional(int /*argc: always 9*/, char** argv) {
  // MODEL PROMPT MODE TEMP PENALTY MIN_P TOP_P TOP_K MAX_TOKENS
  RunOptions o;
  o.model_path = argv[0];
  const std::string mode = argv[2];
  std::string error;
  if (mode == "raw") {
    if (!parse_token_list(argv[1], &o.prompt_ids, &error)) return fail(kExitUsage, error);
  } else if (mode == "tokenizer") {
    o.text_mode = true;
    if (!encode_text(argv[1], &o.prompt_ids, &error)) return fail(kExitError, error);
  } else {
    return fail(kExitUsage, "mode '" + mode + "' must be raw or tokenizer");
  }
  if (o.prompt_ids.empty()) return fail(kExitUsage, "the prompt is empty");
  const char* names[] = {"--temp", "--repeat-penalty", "--min-p", "--top-p", "--top-k", "--max-tokens"};
  std::vector<std::string> flags;
  for (int i = 0; i < 6; ++i) {
    flags.push_back(names[i]);
    flags.push_back(argv[3 + i]);
  }
  std::vector<char*> fake;
  for (auto& f : flags) fake.push_back(&f[0]);
  Args args(static_cast<int>(fake.size()), fake.data(), {});
  o.params.temperature = args.get_float("temp", 0);
  o.params.repetition_penalty = args.get_float("repeat-penalty", 0);
  o.params.min_p = args.get_float("min-p", 0);
  o.params.top_p = args.get_float("top-p", 0);
  o.params.top_k = static_cast<int>(args.get_int("top-k", 0, 0, 1 << 20));
  o.max_tokens = static_cast<int>(args.get_int("max-tokens", 0, 0, 1 << 24));
  if (!args.ok()) return fail(kExitUsage, args.error());
  return run_generation(o);
}

}  // namespace bitmamba::cli
