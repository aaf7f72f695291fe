// Decode of arbitrary id lists (any int32, in or out of the vocabulary), in
// one call and through a StreamDecoder: out-of-range ids are
// kInvalidArgument, and the streamed text equals utf8_sanitize(full decode).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitmamba;
  const Tokenizer& tok = Tokenizer::gpt2();
  // Each 4 bytes one id; the low 2 bits of the first byte say whether the id
  // is folded into the vocabulary (mostly) or kept raw (negative, too large).
  std::vector<int32_t> ids(size / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    int32_t raw;
    std::memcpy(&raw, data + 4 * i, 4);
    const bool fold = (data[4 * i] & 3) != 0;
    ids[i] = fold ? static_cast<int32_t>(static_cast<uint32_t>(raw) % static_cast<uint32_t>(tok.vocab_size())) : raw;
  }
  bool all_valid = true;
  for (int32_t id : ids) all_valid = all_valid && id >= 0 && id < tok.vocab_size();

  std::string whole;
  const Status st = tok.decode(ids.data(), ids.size(), &whole);
  FUZZ_CHECK(st.ok() == all_valid, "decode ok=%d for valid=%d", st.ok(), all_valid);
  if (!st.ok()) FUZZ_CHECK(st.code == ErrorCode::kInvalidArgument, "code %s", error_code_name(st.code));

  StreamDecoder stream(tok);
  std::string streamed, piece;
  std::vector<int32_t> accepted;
  for (int32_t id : ids) {
    const Status pushed = stream.push(id, &piece);
    FUZZ_CHECK(pushed.ok() == (id >= 0 && id < tok.vocab_size()), "push %d", id);
    if (!pushed.ok()) continue;  // a rejected id changes nothing
    streamed += piece;
    accepted.push_back(id);
  }
  streamed += stream.flush();
  std::string accepted_bytes;
  FUZZ_CHECK(tok.decode(accepted.data(), accepted.size(), &accepted_bytes).ok(), "decode of accepted ids");
  FUZZ_CHECK(streamed == utf8_sanitize(accepted_bytes), "streamed text differs from the sanitized decode");
  return 0;
}
