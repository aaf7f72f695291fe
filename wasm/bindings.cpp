// Embind bindings: types and errors only. web/wasm-engine.js wraps these into
// the documented JS API (docs/wasm-api.md).
//
// Nothing here throws or aborts on bad input: every call that can fail
// returns an object { code, message, ... } with code "ok" or one of
// error_code_name(); the JS side turns the others into BitMambaError.
// Pointers and sizes cross as plain numbers.
#include <emscripten/bind.h>
#include <emscripten/heap.h>
#include <emscripten/val.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/bitmamba.h"
#include "core/evaluate.h"
#include "core/tokenizer.h"

namespace bitmamba {
namespace {

using emscripten::val;

val result(const Status& st) {
  val r = val::object();
  r.set("code", std::string(error_code_name(st.code)));
  r.set("message", st.message);
  return r;
}

val invalid(const std::string& message) { return result(make_error(ErrorCode::kInvalidArgument, message)); }

template <class T>
val typed_array_copy(const char* type, const T* data, size_t n) {
  return val::global(type).new_(emscripten::typed_memory_view(n, data));
}

// A heap buffer for a model file, which the download is streamed into and
// which the model then uses in place. Memory then grows once more, so that
// this much stays free past the heap's top for the model's own tables, its
// sessions and the tokenizer: generation never grows memory (growing shared
// memory is slow and can fail late).
constexpr size_t kHeadroomBase = 16u << 20;
constexpr size_t kHeadroomPerFileByte = 32;  // + 1/32 of the file: larger models, larger sessions

double buffer_alloc(double size) {
  if (!(size >= 1 && size <= 4294967295.0)) return 0;
  const size_t bytes = static_cast<size_t>(size);
  void* p = std::malloc(bytes);
  if (p == nullptr) return 0;
  const uint64_t want = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(sbrk(0))) + kHeadroomBase +
                        bytes / kHeadroomPerFileByte;
  if (want > emscripten_get_heap_size() && (want > UINT32_MAX || !emscripten_resize_heap(static_cast<size_t>(want)))) {
    std::free(p);
    return 0;
  }
  return static_cast<double>(reinterpret_cast<uintptr_t>(p));
}

void buffer_free(double ptr) { std::free(reinterpret_cast<void*>(static_cast<uintptr_t>(ptr))); }

// Bytes malloc has handed out and not yet had back: wasm memory never
// shrinks, so this is what shows a leak (the soak test watches it).
double heap_in_use() { return static_cast<double>(mallinfo().uordblks); }

class WasmModel {
 public:
  // On success the model owns the buffer (freed with the model); on error it
  // stays the caller's.
  val load(double ptr, double size, int threads, const std::string& isa) {
    LoadOptions options;
    options.threads = threads;
    options.isa = isa.empty() ? nullptr : isa.c_str();
    uint8_t* bytes = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(ptr));
    if (model_) return invalid("this model is already loaded");
    const Status st = Model::load(bytes, static_cast<size_t>(size), options, &model_);
    if (st.ok()) buffer_ = bytes;
    return result(st);
  }

  ~WasmModel() {
    model_.reset();  // joins the pool's threads, then the bytes can go
    std::free(buffer_);
  }

  val info() const {
    val r = val::object();
    if (!model_) return r;
    const ModelInfo& i = model_->info();
    r.set("vocabSize", i.vocab_size);
    r.set("dModel", i.d_model);
    r.set("nLayers", i.n_layers);
    r.set("nHeads", i.n_heads);
    r.set("dInner", i.d_inner);
    r.set("headDim", i.head_dim);
    r.set("fileBytes", static_cast<double>(i.file_bytes));
    r.set("isa", std::string(model_->isa()));
    r.set("threads", model_->threads());
    return r;
  }

  const Model* model() const { return model_.get(); }

 private:
  std::unique_ptr<Model> model_;
  uint8_t* buffer_ = nullptr;
};

class WasmSession {
 public:
  // wasm-engine.js creates sessions only from loaded models and disposes
  // them before their model.
  explicit WasmSession(const WasmModel& model) : session_(*model.model()) {}

  val feed(const val& ids) {
    const std::vector<int32_t> v = emscripten::convertJSArrayToNumberVector<int32_t>(ids);
    return result(session_.feed(v.data(), v.size()));
  }

  // A Float32Array copy, or null before the first feed.
  val logits() const {
    const float* l = session_.logits();
    if (l == nullptr) return val::null();
    return typed_array_copy("Float32Array", l, static_cast<size_t>(session_.model().info().vocab_size));
  }

  // params: temperature, repetition penalty, min_p, top_p, top_k, then the
  // 64-bit seed as two 32-bit halves. on_token(token, text_piece, logprobs)
  // -> bool; logprobs (null when top_logprobs < 0) is {logprob, top: [{token,
  // text, logprob}]} with the top_logprobs likeliest tokens, under the
  // model's distribution the token was drawn from (before sampling's changes).
  val generate(const val& prompt, float temperature, float penalty, float min_p, float top_p, int top_k,
               unsigned seed_hi, unsigned seed_lo, int max_tokens, int top_logprobs, const val& on_token) {
    const std::vector<int32_t> ids = emscripten::convertJSArrayToNumberVector<int32_t>(prompt);
    SamplingParams params;
    params.temperature = temperature;
    params.repetition_penalty = penalty;
    params.min_p = min_p;
    params.top_p = top_p;
    params.top_k = top_k;
    params.seed = static_cast<uint64_t>(seed_hi) << 32 | seed_lo;
    StreamDecoder text(Tokenizer::gpt2());
    GenerateStats stats;
    const Status st = bitmamba::generate(
        session_, ids.data(), ids.size(), params, max_tokens,
        [&](int32_t token) {
          std::string piece;
          if (!text.push(token, &piece).ok()) piece.clear();  // an id the tokenizer lacks (tiny test vocabularies)
          return on_token(token, piece, top_logprobs < 0 ? val::null() : logprobs(token, top_logprobs)).as<bool>();
        },
        &stats);
    val r = result(st);
    r.set("promptTokens", stats.prompt_tokens);
    r.set("generatedTokens", stats.generated_tokens);
    r.set("prefillMs", stats.prefill_ms);
    r.set("decodeMs", stats.decode_ms);
    r.set("stoppedAtEos", stats.stopped_at_eos);
    r.set("tail", text.flush());  // a character the last token left incomplete, as U+FFFD
    return r;
  }

  val snapshot() const {
    const std::vector<uint8_t> bytes = session_.snapshot();
    return typed_array_copy("Uint8Array", bytes.data(), bytes.size());
  }

  val restore(const val& bytes) {
    const std::vector<uint8_t> v = emscripten::convertJSArrayToNumberVector<uint8_t>(bytes);
    return result(session_.restore(v.data(), v.size()));
  }

  // The log-likelihood of each choice after the context (docs/evaluation.md).
  val score(const std::string& context, const val& choices) {
    const std::vector<std::string> c = emscripten::vecFromJSArray<std::string>(choices);
    std::vector<double> logliks;
    val r = result(score_choices(session_, Tokenizer::gpt2(), context, c, &logliks));
    r.set("logliks", typed_array_copy("Float64Array", logliks.data(), logliks.size()));
    return r;
  }

  // docs/evaluation.md; on_progress(done, total) -> bool (false stops).
  val perplexity(const std::string& text, double window, const val& on_progress) {
    std::vector<int32_t> ids;
    Status st = Tokenizer::gpt2().encode(text, &ids);
    if (st.ok() && ids.empty()) st = make_error(ErrorCode::kInvalidArgument, "the text has no tokens");
    PerplexityOptions options;
    options.window = static_cast<size_t>(window);
    options.on_progress = [&](size_t done, size_t total) {
      return on_progress(static_cast<double>(done), static_cast<double>(total)).as<bool>();
    };
    PerplexityResult p;
    if (st.ok()) st = bitmamba::perplexity(session_, ids.data(), ids.size(), options, &p);
    val r = result(st);
    r.set("tokens", static_cast<double>(p.tokens));
    r.set("nll", p.nll);
    r.set("words", static_cast<double>(count_words(text)));
    r.set("bytes", static_cast<double>(text.size()));
    return r;
  }

  void reset() { session_.reset(); }
  double position() const { return static_cast<double>(session_.position()); }

 private:
  val logprobs(int32_t token, int k) const {
    const float* logits = session_.logits();
    const int vocab = session_.model().info().vocab_size;
    val top = val::array();
    for (const TokenLogprob& t : top_logprobs(logits, vocab, k)) {
      std::string bytes;
      val entry = val::object();
      entry.set("token", t.token);
      entry.set("text", Tokenizer::gpt2().decode(&t.token, 1, &bytes).ok() ? utf8_sanitize(bytes) : std::string());
      entry.set("logprob", t.logprob);
      top.call<void>("push", entry);
    }
    val r = val::object();
    r.set("logprob", log_softmax_at(logits, vocab, token));
    r.set("top", top);
    return r;
  }

  Session session_;
};

val tokenize(const std::string& text) {
  std::vector<int32_t> ids;
  val r = result(Tokenizer::gpt2().encode(text, &ids));
  r.set("ids", typed_array_copy("Int32Array", ids.data(), ids.size()));
  return r;
}

val detokenize(const val& ids) {
  const std::vector<int32_t> v = emscripten::convertJSArrayToNumberVector<int32_t>(ids);
  std::string bytes;
  val r = result(Tokenizer::gpt2().decode(v.data(), v.size(), &bytes));
  r.set("text", utf8_sanitize(bytes));
  return r;
}

}  // namespace
}  // namespace bitmamba

EMSCRIPTEN_BINDINGS(bitmamba) {
  using namespace emscripten;
  using namespace bitmamba;
  function("bufferAlloc", &buffer_alloc);
  function("bufferFree", &buffer_free);
  function("heapInUse", &heap_in_use);
  function("tokenize", &tokenize);
  function("detokenize", &detokenize);
  class_<WasmModel>("Model")
      .constructor<>()
      .function("load", &WasmModel::load)
      .function("info", &WasmModel::info);
  class_<WasmSession>("Session")
      .constructor<const WasmModel&>()
      .function("feed", &WasmSession::feed)
      .function("logits", &WasmSession::logits)
      .function("generate", &WasmSession::generate)
      .function("snapshot", &WasmSession::snapshot)
      .function("restore", &WasmSession::restore)
      .function("score", &WasmSession::score)
      .function("perplexity", &WasmSession::perplexity)
      .function("reset", &WasmSession::reset)
      .function("position", &WasmSession::position);
}
