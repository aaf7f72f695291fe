// JSON through nlohmann/json (Debian's nlohmann-json3-dev) in its
// non-throwing forms: the wasm build has no exception catching, so every
// type is checked before a value is read.
#include "cli/score_tasks.h"

#include <nlohmann/json.hpp>

#include "cli/text_io.h"

namespace bitmamba::cli {

namespace {

using nlohmann::json;

bool blank(const std::string& line) { return line.find_first_not_of(" \t\r") == std::string::npos; }

// Empty on success, else what is wrong with the item.
std::string read_item(const json& j, ScoreItem* item) {
  if (!j.is_object()) return "expected a JSON object {\"context\", \"choices\", \"label\"}";
  const auto context = j.find("context");
  if (context == j.end() || !context->is_string()) return "\"context\" must be a string";
  item->context = context->get<std::string>();
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array()) return "\"choices\" must be an array of strings";
  if (choices->empty()) return "\"choices\" is empty";
  item->choices.clear();
  for (const json& c : *choices) {
    if (!c.is_string()) return "\"choices\" must be an array of strings";
    item->choices.push_back(c.get<std::string>());
    if (item->choices.back().empty())
      return "choice " + std::to_string(item->choices.size() - 1) + " is empty (acc_norm divides by its length)";
  }
  const auto label = j.find("label");
  if (label == j.end() || !label->is_number_integer()) return "\"label\" must be an integer";
  const int64_t value = label->get<int64_t>();
  if (value < 0 || static_cast<uint64_t>(value) >= item->choices.size())
    return "\"label\" " + std::to_string(value) + " is out of range for " + std::to_string(item->choices.size()) +
           " choices";
  item->label = static_cast<size_t>(value);
  return "";
}

}  // namespace

bool parse_score_items(const std::string& path, const std::string& data, std::vector<ScoreItem>* items,
                       std::string* error) {
  items->clear();
  const std::vector<std::string> lines = split_lines(data);
  for (size_t n = 0; n < lines.size(); ++n) {
    if (blank(lines[n])) continue;
    const std::string where = path + " line " + std::to_string(n + 1) + ": ";
    const json j = json::parse(lines[n], nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      *error = where + "not valid JSON";
      return false;
    }
    ScoreItem item;
    item.line = n + 1;
    const std::string problem = read_item(j, &item);
    if (!problem.empty()) {
      *error = where + problem;
      return false;
    }
    items->push_back(std::move(item));
  }
  if (items->empty()) *error = path + ": no items";
  return !items->empty();
}

}  // namespace bitmamba::cli
