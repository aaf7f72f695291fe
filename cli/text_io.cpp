#include "cli/text_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

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

bool read_file(const std::string& path, std::string* out, std::string* error) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    *error = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  out->clear();
  char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->append(buf, n);
  const bool bad = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (bad) *error = "cannot read '" + path + "'";
  return !bad;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    lines.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace bitmamba::cli
