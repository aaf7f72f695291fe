// Tokenizer encode on arbitrary bytes: invalid UTF-8 is kBadText; valid text
// encodes to in-vocabulary ids that decode back to exactly the same bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitmamba;
  const Tokenizer& tok = Tokenizer::gpt2();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids;
  const Status st = tok.encode(text, &ids);
  if (!st.ok()) {
    FUZZ_CHECK(st.code == ErrorCode::kBadText, "encode code %s", error_code_name(st.code));
    return 0;
  }
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "id %d", id);
  std::string back;
  FUZZ_CHECK(tok.decode(ids.data(), ids.size(), &back).ok(), "decode of encoded ids");
  FUZZ_CHECK(back == text, "round trip changed %zu bytes into %zu", size, back.size());
  return 0;
}
