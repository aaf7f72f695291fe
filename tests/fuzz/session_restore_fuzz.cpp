// Session::restore on arbitrary bytes. Inputs of the snapshot's exact size
// are rare, so the input is also written over a real snapshot of a tiny
// model (from its first byte, or from an offset the input chooses): the
// fuzzer then mutates the header, the flags, the seen set and the state.
// Every rejection is kBadState and leaves the session as it was; a
// restored session feeds and samples without reading out of bounds.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/model_maker.h"
#include "core/bitmamba.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace bitmamba;

struct Fixture {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Model> model;
  std::vector<uint8_t> snapshot;  // after a short prompt: logits and seen ids set
};

Fixture* make_fixture() {
  auto* f = new Fixture;
  // vocab 100 is not a multiple of 64: the seen set's last word has spare bits.
  const std::string path = "/tmp/bitmamba_fuzz_restore_" + std::to_string(::getpid()) + ".bin";
  FUZZ_CHECK(cli::make_model({100, 16, 1, 2}, 5, path).ok(), "make_model");
  std::ifstream in(path, std::ios::binary);
  f->bytes.assign(std::istreambuf_iterator<char>(in), {});
  std::remove(path.c_str());
  FUZZ_CHECK(Model::load(f->bytes.data(), f->bytes.size(), {}, &f->model).ok(), "load");
  Session s(*f->model);
  const int32_t prompt[4] = {3, 99, 64, 10};
  FUZZ_CHECK(s.feed(prompt, 4).ok(), "feed");
  f->snapshot = s.snapshot();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fx = make_fixture();
  Session session(*fx->model);
  const std::vector<uint8_t> before = session.snapshot();

  Status st = session.restore(data, size);
  if (!st.ok()) FUZZ_CHECK(session.snapshot() == before, "a rejected snapshot changed the session");

  std::vector<uint8_t> snap = fx->snapshot;
  if (size > 0) {
    const size_t at = data[0] % 2 == 0 ? 0 : (static_cast<size_t>(data[0]) * 8) % snap.size();
    std::memcpy(snap.data() + at, data + 1, std::min(size - 1, snap.size() - at));
  }
  st = session.restore(snap.data(), snap.size());
  if (!st.ok()) {
    FUZZ_CHECK(st.code == ErrorCode::kBadState, "code %s", error_code_name(st.code));
    FUZZ_CHECK(session.snapshot() == before, "a rejected snapshot changed the session");
    return 0;
  }
  FUZZ_CHECK(session.snapshot() == snap, "restore then snapshot differs from the restored bytes");
  const int vocab = fx->model->info().vocab_size;
  const uint64_t last_word = session.seen_bits()[(vocab - 1) / 64];
  FUZZ_CHECK(last_word >> (vocab % 64) == 0, "seen ids outside the vocabulary");
  SamplingParams params;
  params.seed = 1;
  const bool had_logits = session.logits() != nullptr;
  st = generate(session, nullptr, 0, params, 2, [&](int32_t t) {
    FUZZ_CHECK(t >= 0 && t < vocab, "sampled id %d", t);
    return true;
  }, nullptr);
  // Without logits there is nothing to continue from: kInvalidArgument.
  FUZZ_CHECK(st.ok() == had_logits, "generate after restore: %s", st.message.c_str());
  return 0;
}
