// The generation loop: prefill, then sample / feed one token at a time.
#include <chrono>

#include "core/bitmamba.h"
#include "core/sampler.h"

namespace bitmamba {

namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Status generate(Session& session, const int32_t* prompt, size_t prompt_len, const SamplingParams& params,
                int max_tokens, const TokenCallback& on_token, GenerateStats* stats) {
  GenerateStats local;
  GenerateStats& s = stats ? *stats : local;
  s = GenerateStats{};
  Status st = validate(params);
  if (!st.ok()) return st;
  if (max_tokens < 0) return make_error(ErrorCode::kInvalidArgument, "max_tokens must be >= 0");
  if (prompt_len == 0 && session.logits() == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "empty prompt and no context to continue from");

  auto start = std::chrono::steady_clock::now();
  if (prompt_len > 0) {
    st = session.feed(prompt, prompt_len);
    if (!st.ok()) return st;
  }
  s.prompt_tokens = static_cast<int>(prompt_len);
  s.prefill_ms = ms_since(start);

  const int vocab = session.model().info().vocab_size;
  Sampler sampler(params, vocab);
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < max_tokens; ++i) {
    const int32_t token = sampler.sample(session.logits(), session);
    ++s.generated_tokens;
    const bool go_on = on_token ? on_token(token) : true;
    // Every generated token becomes part of the context, so a later call
    // (a chat turn) continues exactly where this one stopped.
    st = session.feed(&token, 1);
    if (!st.ok()) return st;
    if (token == kEndOfText && vocab > kEndOfText) {
      s.stopped_at_eos = true;
      break;
    }
    if (!go_on) break;
  }
  s.decode_ms = ms_since(start);
  return Status::Ok();
}

}  // namespace bitmamba
