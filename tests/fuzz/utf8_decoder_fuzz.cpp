// The streaming UTF-8 decoder on arbitrary bytes fed in arbitrary pieces: the
// output never depends on where the stream was cut, is always valid UTF-8
// (the tokenizer, which rejects invalid UTF-8, accepts it), and valid input
// comes out unchanged.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitmamba;
  if (size == 0) return 0;
  // The first byte seeds the piece lengths, the rest is the stream.
  unsigned cut = data[0] | 1u;
  const uint8_t* p = data + 1;
  const size_t n = size - 1;

  Utf8Decoder dec;
  std::string pieces;
  for (size_t at = 0; at < n;) {
    const size_t len = std::min<size_t>(n - at, cut % 7);
    dec.feed(p + at, len, &pieces);
    at += len;
    cut = cut * 5 + 3;  // 0-length pieces included: they must be harmless
  }
  dec.finish(&pieces);

  const std::string_view input(reinterpret_cast<const char*>(p), n);
  const std::string whole = utf8_sanitize(input);
  FUZZ_CHECK(pieces == whole, "pieces and whole differ");
  std::vector<int32_t> ids;
  const Status st = Tokenizer::gpt2().encode(whole, &ids);
  FUZZ_CHECK(st.ok(), "decoder output is not valid UTF-8: %s", st.message.c_str());
  if (Tokenizer::gpt2().encode(input, &ids).ok()) FUZZ_CHECK(whole == input, "valid UTF-8 was changed");
  return 0;
}
