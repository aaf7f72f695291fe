#include "cli/text_io.h"

namespace bitmamba::cli {

// The tokenizer lands with its own change; until then text mode reports it.
struct TextStream::Impl {};
TextStream::TextStream() = default;
TextStream::~TextStream() = default;
bool TextStream::push(int32_t, std::string*) { return false; }
std::string TextStream::flush() { return {}; }

bool encode_text(const std::string&, std::vector<int32_t>*, std::string* error) {
  *error = "text prompts need the tokenizer, which is not built yet; use --tokens";
  return false;
}
bool decode_all(const std::vector<int32_t>&, std::string*) { return false; }

}  // namespace bitmamba::cli
