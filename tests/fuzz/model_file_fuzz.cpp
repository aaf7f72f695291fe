// The BIT2 parser on arbitrary bytes, then Model::load and one short feed on
// whatever passes it: every rejection is kBadModel, and a model the parser
// accepts loads and runs (logits stay defined for any finite weights).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/bitmamba.h"
#include "core/model_file.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitmamba;
  ModelFile file;
  const Status parsed = parse_model_file(data, size, &file);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.code == ErrorCode::kBadModel, "parser code %s", error_code_name(parsed.code));
    FUZZ_CHECK(!parsed.message.empty(), "empty message");
    return 0;
  }
  std::vector<uint8_t> bytes(data, data + size);  // load repacks in place
  std::unique_ptr<Model> model;
  const Status loaded = Model::load(bytes.data(), bytes.size(), LoadOptions{}, &model);
  FUZZ_CHECK(loaded.ok(), "parsed but did not load: %s", loaded.message.c_str());
  Session session(*model);
  const int32_t last = model->info().vocab_size - 1;
  const int32_t prompt[3] = {0, last, last / 2};
  FUZZ_CHECK(session.feed(prompt, 3).ok(), "feed");
  FUZZ_CHECK(session.logits() != nullptr, "no logits");
  return 0;
}
