// Text in and out of the CLI through the core's GPT-2 tokenizer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bitmamba::cli {

// Reads a whole file, "-" meaning stdin; false with a message naming it.
bool read_file(const std::string& path, std::string* out, std::string* error);

// Splits on '\n'; a final empty line (after the last newline) is dropped.
std::vector<std::string> split_lines(const std::string& s);

bool encode_text(const std::string& text, std::vector<int32_t>* ids, std::string* error);
bool decode_all(const std::vector<int32_t>& ids, std::string* text);

// Streams generated ids as UTF-8 text, holding back incomplete characters.
class TextStream {
 public:
  TextStream();
  ~TextStream();
  // Sets *piece to the text that became complete with `id`; false if none.
  bool push(int32_t id, std::string* piece);
  std::string flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitmamba::cli
