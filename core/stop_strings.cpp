#include "core/stop_strings.h"

#include <algorithm>

namespace bitmamba {

Status StopStrings::make(std::vector<std::string> stops, StopStrings* out) {
  if (stops.size() > kMaxStrings)
    return make_error(ErrorCode::kInvalidArgument,
                      "at most " + std::to_string(kMaxStrings) + " stop strings, got " + std::to_string(stops.size()));
  size_t longest = 0;
  for (const std::string& s : stops) {
    if (s.empty()) return make_error(ErrorCode::kInvalidArgument, "a stop string is empty");
    if (s.size() > kMaxBytes)
      return make_error(ErrorCode::kInvalidArgument,
                        "a stop string is longer than " + std::to_string(kMaxBytes) + " bytes");
    longest = std::max(longest, s.size());
  }
  out->stops_ = std::move(stops);
  out->tail_.clear();
  out->keep_ = longest > 0 ? longest - 1 : 0;
  return Status::Ok();
}

int StopStrings::push(std::string_view piece) {
  if (stops_.empty() || piece.empty()) return -1;
  // A match not ending in `piece` would have been found by an earlier call,
  // so the window need hold only what a match ending here can start in.
  std::string window = tail_;
  window.append(piece);
  for (size_t i = 0; i < stops_.size(); ++i) {
    if (window.find(stops_[i]) != std::string::npos) return static_cast<int>(i);
  }
  tail_ = window.size() > keep_ ? window.substr(window.size() - keep_) : window;
  return -1;
}

}  // namespace bitmamba
