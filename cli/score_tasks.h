// Multiple-choice items for `score`: one JSON object per line,
// {"context": str, "choices": [str, ...], "label": int} (docs/evaluation.md).
#pragma once

#include <string>
#include <vector>

namespace bitmamba::cli {

struct ScoreItem {
  size_t line = 0;  // 1-based, for messages
  std::string context;
  std::vector<std::string> choices;
  size_t label = 0;
};

// Parses the file's lines (blank ones skipped); false with a message naming
// the file and line on the first bad one: not JSON, a field missing or of
// the wrong type, no choices, an empty choice, a label out of range.
bool parse_score_items(const std::string& path, const std::string& data, std::vector<ScoreItem>* items,
                       std::string* error);

}  // namespace bitmamba::cli
