#include "cli/text_io.h"

#include "core/tokenizer.h"

namespace bitmamba::cli {

struct TextStream::Impl {
  StreamDecoder decoder{Tokenizer::gpt2()};
};

TextStream::TextStream() : impl_(new Impl) {}
TextStream::~TextStream() = default;

bool TextStream::push(int32_t id, std::string* piece) {
  // An id outside the GPT-2 vocabulary (a synthetic model with a larger one)
  // has no text: it shows as nothing rather than stopping the stream.
  return impl_->decoder.push(id, piece).ok() && !piece->empty();
}

std::string TextStream::flush() { return impl_->decoder.flush(); }

bool encode_text(const std::string& text, std::vector<int32_t>* ids, std::string* error) {
  const Status st = Tokenizer::gpt2().encode(text, ids);
  if (!st.ok()) *error = st.message;
  return st.ok();
}

bool decode_all(const std::vector<int32_t>& ids, std::string* text) {
  std::string bytes;
  if (!Tokenizer::gpt2().decode(ids.data(), ids.size(), &bytes).ok()) return false;
  *text = utf8_sanitize(bytes);
  return true;
}

}  // namespace bitmamba::cli
