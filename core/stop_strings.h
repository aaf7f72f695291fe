// Stop strings: a generation ends once the text it produced contains one of
// them. The text is fed as the UTF-8 pieces a StreamDecoder gives, so a stop
// string split across tokens (even inside one character) is still found, on
// the token that completes it. Only the text generated since make() counts,
// never the prompt.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace bitmamba {

class StopStrings {
 public:
  static constexpr size_t kMaxStrings = 16;
  static constexpr size_t kMaxBytes = 256;

  // An empty string (it would match before any token), more than kMaxStrings
  // strings or one longer than kMaxBytes is kInvalidArgument.
  static Status make(std::vector<std::string> stops, StopStrings* out);

  bool empty() const { return stops_.empty(); }

  // Appends a text piece; returns the index of a stop string the text now
  // contains (the first given, if several end in this piece), or -1.
  int push(std::string_view piece);

 private:
  std::vector<std::string> stops_;
  std::string tail_;  // the text's last (longest stop - 1) bytes
  size_t keep_ = 0;
};

}  // namespace bitmamba
