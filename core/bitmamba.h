// BitMamba-2 inference: the public C++ API, shared by the native CLI and the
// WebAssembly bindings.
//
//   std::vector<uint8_t> bytes = ...;            // a BIT2 file (mutable: repacked in place)
//   std::unique_ptr<bitmamba::Model> model;
//   bitmamba::Status st = bitmamba::Model::load(bytes.data(), bytes.size(), {}, &model);
//   if (!st.ok()) { fprintf(stderr, "%s\n", st.message.c_str()); return 1; }
//
//   bitmamba::Session session(*model);
//   std::vector<int32_t> prompt = {15496, 11, 314, 716};
//   bitmamba::SamplingParams params;             // docs/sampling.md defaults
//   params.seed = 42;
//   bitmamba::GenerateStats stats;
//   st = bitmamba::generate(session, prompt.data(), prompt.size(), params, 200,
//                           [](int32_t token) { printf("%d ", token); return true; }, &stats);
//
// Errors are values: nothing here throws or aborts on bad input.
// A Model is immutable after load and may be shared by several Sessions, but
// its sessions must run one at a time (they share the model's thread pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace bitmamba {

class ThreadPool;

struct ModelInfo {
  int vocab_size = 0;
  int d_model = 0;
  int n_layers = 0;
  int n_heads = 0;
  int d_inner = 0;   // 2 * d_model
  int head_dim = 0;  // d_inner / n_heads
  size_t file_bytes = 0;
};

struct LoadOptions {
  int threads = 1;              // total threads used by the kernels (>= 1)
  const char* isa = nullptr;    // force a kernel table ("scalar", "avx2", ...); null = best
};

class Model {
 public:
  // Parses and validates a BIT2 file held in `bytes`, then repacks its ternary
  // tensors in place. `bytes` must stay alive and unmodified as long as the
  // model; on error it may have been left unchanged or partly repacked only
  // if validation succeeded (validation runs fully before any write).
  static Status load(uint8_t* bytes, size_t size, const LoadOptions& options,
                     std::unique_ptr<Model>* out);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelInfo& info() const { return info_; }
  const char* isa() const;
  int threads() const;

  struct Impl;  // opaque: defined in core/model_impl.h

 private:
  Model();
  friend class Session;
  std::unique_ptr<Impl> impl_;
  ModelInfo info_;
};

class Session {
 public:
  explicit Session(const Model& model);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return model_; }

  // Back to the empty context.
  void reset();

  // Runs the tokens through the model (a batched prefill when n > 1) and
  // leaves the logits of the last one in logits(). Ids are checked first:
  // on error nothing has changed.
  Status feed(const int32_t* tokens, size_t n);

  // The same feed, and also the logits after every token: each(i, row) is
  // called in order with row = the [vocab] logits after tokens[i], valid
  // only during the call. The lm_head runs batched over each prefill chunk,
  // so this costs one lm_head product per token (feed does one per call).
  using LogitsRowFn = std::function<void(size_t index, const float* row)>;
  Status feed(const int32_t* tokens, size_t n, const LogitsRowFn& each);

  // [vocab] logits after the last feed; null before the first.
  const float* logits() const;

  // Number of tokens fed since reset/restore plus those in a restored snapshot.
  uint64_t position() const { return position_; }

  // Whether `token` was fed since the last reset (repetition-penalty history).
  bool seen(int32_t token) const;
  // The same as a bitset: bit (id % 64) of word id / 64, ceil(vocab / 64) words.
  const uint64_t* seen_bits() const;

  // The state (conv + SSM, seen-token set, position, last logits) as bytes of
  // a constant size for this model, and back.
  size_t snapshot_size() const;
  std::vector<uint8_t> snapshot() const;
  Status restore(const uint8_t* data, size_t size);

 private:
  struct Buffers;
  void logits_last(int T);
  void logits_rows(int T);
  const Model& model_;
  std::unique_ptr<Buffers> buf_;
  uint64_t position_ = 0;
  bool has_logits_ = false;
};

// docs/sampling.md. Defaults are the reference engine's.
struct SamplingParams {
  float temperature = 0.8f;          // < 0.05: greedy
  float repetition_penalty = 1.15f;  // 1: off
  float min_p = 0.05f;               // 0: off
  float top_p = 0.9f;                // 1: off
  int top_k = 40;                    // 0: off (all tokens)
  uint64_t seed = 0;
};

// Checks ranges and rejects NaN/Inf.
Status validate(const SamplingParams& params);

struct GenerateStats {
  int prompt_tokens = 0;
  int generated_tokens = 0;
  double prefill_ms = 0;
  double decode_ms = 0;
  bool stopped_at_eos = false;
};

constexpr int32_t kEndOfText = 50256;

// Called with each generated token (including a final end-of-text); return
// false to stop.
using TokenCallback = std::function<bool(int32_t token)>;

// Feeds the prompt (which may be empty if the session already has logits),
// then samples up to max_tokens tokens, stopping after kEndOfText.
Status generate(Session& session, const int32_t* prompt, size_t prompt_len,
                const SamplingParams& params, int max_tokens, const TokenCallback& on_token,
                GenerateStats* stats);

}  // namespace bitmamba
