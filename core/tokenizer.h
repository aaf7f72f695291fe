// GPT-2 byte-level BPE tokenizer, shared by the CLI and the wasm build.
//
//   const bitmamba::Tokenizer& tok = bitmamba::Tokenizer::gpt2();
//   std::vector<int32_t> ids;
//   bitmamba::Status st = tok.encode("Hello world", &ids);   // {15496, 995}
//
//   bitmamba::StreamDecoder dec(tok);                         // while generating:
//   std::string piece;
//   st = dec.push(id, &piece);      // piece: newly completed UTF-8 text, maybe ""
//   ...
//   piece = dec.flush();            // at the end of generation
//
// Encoding follows the npm package gpt-3-encoder (the reference): the GPT-2
// pattern /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu
// with JavaScript's classes (core/unicode_tables.h), then BPE by merge rank.
// "<|endoftext|>" in the text is ordinary text; only decode emits it.
//
// Text is UTF-8. encode rejects invalid UTF-8 (overlong forms, surrogates,
// code points above U+10FFFF, truncated or stray bytes) with kBadText naming
// the byte offset, rather than guessing a repair.
//
// Thread-safety: all const methods may be called concurrently; the word cache
// is guarded by a mutex. A StreamDecoder belongs to one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace bitmamba {

class Tokenizer {
 public:
  // The GPT-2 data embedded at build time, parsed on first use. If that data
  // were corrupt (a build error), every call returns the parse error.
  static const Tokenizer& gpt2();

  // Parses a tokenizer file (format: core/tokenizer_data.h). Copies the data.
  static Status parse(const uint8_t* data, size_t size, std::unique_ptr<Tokenizer>* out);

  // Replaces *ids with the tokens of text.
  Status encode(std::string_view text, std::vector<int32_t>* ids) const;

  // Replaces *bytes with the raw bytes of the tokens: concatenated token bytes,
  // which need not be valid UTF-8 (a token may hold part of a character).
  // kInvalidArgument for an id outside [0, vocab_size()).
  Status decode(const int32_t* ids, size_t n, std::string* bytes) const;

  // Ok, unless this is gpt2() and the embedded data failed to parse.
  const Status& status() const { return load_error_; }

  int vocab_size() const { return static_cast<int>(token_offset_.empty() ? 0 : token_offset_.size() - 1); }
  int32_t eot_id() const { return eot_id_; }

  // The bytes of one token; id must be in [0, vocab_size()).
  std::string_view token_bytes(int32_t id) const {
    return std::string_view(reinterpret_cast<const char*>(token_bytes_.data()) + token_offset_[id],
                            token_offset_[id + 1] - token_offset_[id]);
  }

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

 private:
  Tokenizer();
  struct WordCache;
  struct BpeScratch;

  void encode_word(const uint8_t* word, size_t len, std::vector<int32_t>* ids, BpeScratch* scratch) const;
  void bpe(const uint8_t* word, size_t len, BpeScratch* scratch) const;
  int32_t merge_rank(int32_t left, int32_t right) const;

  Status load_error_;
  std::vector<uint32_t> token_offset_;  // [vocab + 1] into token_bytes_
  std::vector<uint8_t> token_bytes_;
  int32_t byte_id_[256] = {};           // byte value -> its single-byte token
  int32_t n_base_ = 0;                  // merge r creates token n_base_ + r
  int32_t eot_id_ = -1;
  std::vector<uint32_t> pair_key_;      // open addressing: left << 16 | right
  std::vector<int32_t> pair_rank_;
  uint32_t pair_mask_ = 0;

  mutable std::mutex cache_mutex_;
  std::unique_ptr<WordCache> cache_;    // guarded by cache_mutex_
};

// WHATWG UTF-8 decoding, the algorithm of JavaScript's TextDecoder (fatal:
// false), fed in pieces: valid sequences are copied, each maximal invalid
// subpart becomes one U+FFFD, and a sequence that is valid so far is held back
// until it completes or breaks. Unlike TextDecoder, a leading byte-order mark
// is kept, so decode(encode(x)) round-trips exactly.
class Utf8Decoder {
 public:
  // Appends to *out the text completed by these bytes.
  void feed(const uint8_t* p, size_t n, std::string* out);
  // Ends the stream: appends one U+FFFD if a sequence is incomplete.
  void finish(std::string* out);

 private:
  uint8_t pending_[4] = {};  // the incomplete sequence, valid so far
  int pending_len_ = 0;
  int needed_ = 0;           // continuation bytes still expected
  uint8_t lower_ = 0x80;     // range allowed for the next continuation byte
  uint8_t upper_ = 0xBF;
};

// The whole of bytes through a Utf8Decoder: valid UTF-8 for any input.
std::string utf8_sanitize(std::string_view bytes);

// Incremental decoding for generation. Holds back the bytes of a character
// that a token has only begun; emits text that is always complete UTF-8, and
// the concatenation of every push and the final flush equals
// utf8_sanitize(full decode). So it never shows a U+FFFD the full decode
// would not show.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // Replaces *out with the text this token completes (possibly empty).
  // An out-of-range id returns kInvalidArgument and changes nothing.
  Status push(int32_t id, std::string* out);

  // Ends the stream: a held-back incomplete character becomes one U+FFFD,
  // as in the full decode. The decoder is then ready for a new stream.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  Utf8Decoder utf8_;
};

}  // namespace bitmamba
