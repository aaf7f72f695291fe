// `bench`: end-to-end figures on one model. Medians over --runs runs, each
// in a fresh session: prefill of a pseudo-random prompt, then a greedy decode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/model_loader.h"
#include "core/evaluate.h"
#include "core/rng.h"
#include "core/sampler.h"

namespace bitmamba::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args(argc, argv, {"json"});
  args.reject_unknown({"threads", "prompt-tokens", "gen-tokens", "runs", "isa", "json"});
  const LoadFlags load_flags = parse_load_flags(args);
  const int prompt_tokens = static_cast<int>(args.get_int("prompt-tokens", 512, 1, 1 << 20));
  const int gen_tokens = static_cast<int>(args.get_int("gen-tokens", 128, 1, 1 << 20));
  const int runs = static_cast<int>(args.get_int("runs", 3, 1, 1000));
  if (!args.ok()) return fail(kExitUsage, "bench: " + args.error());
  if (args.positionals().size() != 1) return fail(kExitUsage, "bench: expected one MODEL path");

  LoadedModel lm;
  Status st = load_model(args.positionals()[0], load_flags, &lm);
  if (!st.ok()) return fail(kExitError, st.message);
  const ModelInfo& info = lm.model->info();

  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  SplitMix64 rng(1);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(info.vocab_size));
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.repetition_penalty = 1;

  // `perplexity`'s pass over the prompt: prefill plus every token's logits
  // and log-softmax. It needs <|endoftext|> in the vocabulary.
  const bool scoring = info.vocab_size > kEndOfText;
  std::vector<double> prefill, ttft, decode, score;
  Session session(*lm.model);
  for (int r = 0; r < runs; ++r) {
    session.reset();
    Sampler sampler(greedy, info.vocab_size);
    const auto t0 = Clock::now();
    st = session.feed(prompt.data(), prompt.size());
    if (!st.ok()) return fail(kExitError, st.message);
    const auto t1 = Clock::now();
    int32_t token = sampler.sample(session.logits(), session);
    const auto t2 = Clock::now();
    for (int i = 0; i < gen_tokens; ++i) {
      st = session.feed(&token, 1);
      if (!st.ok()) return fail(kExitError, st.message);
      token = sampler.sample(session.logits(), session);
    }
    const auto t3 = Clock::now();
    prefill.push_back(prompt_tokens * 1000.0 / ms_between(t0, t1));
    ttft.push_back(ms_between(t0, t2));
    decode.push_back(gen_tokens * 1000.0 / ms_between(t2, t3));
  }
  // Memory before scoring, which adds its [64, vocab] logits buffer.
  const double rss = peak_rss_mib();
  const double file_mib = static_cast<double>(info.file_bytes) / (1024.0 * 1024.0);
  const double wasm_mib = wasm_memory_mib();
  for (int r = 0; r < runs && scoring; ++r) {
    PerplexityResult result;
    const auto t0 = Clock::now();
    st = perplexity(session, prompt.data(), prompt.size(), {}, &result);
    if (!st.ok()) return fail(kExitError, st.message);
    score.push_back(prompt_tokens * 1000.0 / ms_between(t0, Clock::now()));
  }
  if (args.has("json")) {
    char wasm_field[64] = "";
    if (wasm_mib > 0) std::snprintf(wasm_field, sizeof wasm_field, ",\"wasm_memory_mib\":%.1f", wasm_mib);
    char score_field[64] = "";
    if (scoring) std::snprintf(score_field, sizeof score_field, ",\"perplexity_tok_s\":%.1f", median(score));
    std::printf(
        "{\"isa\":\"%s\",\"threads\":%d,\"load_ms\":%.2f,\"prompt_tokens\":%d,\"gen_tokens\":%d,\"runs\":%d,"
        "\"prefill_tok_s\":%.1f,\"ttft_ms\":%.2f,\"decode_tok_s\":%.1f%s,\"peak_rss_mib\":%.1f,\"file_mib\":%.1f%s}\n",
        lm.model->isa(), lm.model->threads(), lm.load_ms, prompt_tokens, gen_tokens, runs, median(prefill),
        median(ttft), median(decode), score_field, rss, file_mib, wasm_field);
  } else {
    std::printf("model       vocab %d, d_model %d, %d layers, %d heads (%.1f MiB)\n", info.vocab_size, info.d_model,
                info.n_layers, info.n_heads, file_mib);
    std::printf("kernels     %s, %d thread%s\n", lm.model->isa(), lm.model->threads(),
                lm.model->threads() == 1 ? "" : "s");
    std::printf("load        %.1f ms\n", lm.load_ms);
    std::printf("prefill     %.1f tok/s (%d-token prompt, median of %d)\n", median(prefill), prompt_tokens, runs);
    std::printf("first token %.1f ms\n", median(ttft));
    std::printf("decode      %.1f tok/s (%d tokens, greedy, median of %d)\n", median(decode), gen_tokens, runs);
    if (scoring)
      std::printf("perplexity  %.1f tok/s (the prompt scored: %.2fx prefill)\n", median(score),
                  median(score) / median(prefill));
    std::printf("peak RSS    %.1f MiB (file + %.1f MiB)\n", rss, rss - file_mib);
    if (wasm_mib > 0) std::printf("wasm memory %.1f MiB (file + %.1f MiB)\n", wasm_mib, wasm_mib - file_mib);
  }
  return kExitOk;
}

}  // namespace bitmamba::cli
