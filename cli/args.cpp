#include "cli/args.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace bitmamba::cli {

Args::Args(int argc, char** argv, std::vector<std::string> flags) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2);
      std::string value = "1";
      const size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (std::find(flags.begin(), flags.end(), name) == flags.end()) {
        if (i + 1 >= argc) {
          error_ = "--" + name + " needs a value";
          return;
        }
        value = argv[++i];
      }
      values_[name] = value;
      all_values_[name].push_back(value);
    } else {
      positionals_.push_back(a);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = all_values_.find(name);
  return it == all_values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0' || v < min || v > max) {
    if (error_.empty())
      error_ = "--" + name + " '" + it->second + "' must be an integer in " + std::to_string(min) + ".." +
               std::to_string(max);
    return fallback;
  }
  return v;
}

uint64_t Args::get_u64(const std::string& name, uint64_t fallback) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& text = it->second;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  // strtoull accepts a sign and wraps "-1" around; a seed is digits only.
  const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || errno != 0 || *end != '\0') {
    if (error_.empty()) error_ = "--" + name + " '" + text + "' must be an integer in 0..18446744073709551615";
    return fallback;
  }
  return v;
}

float Args::get_float(const std::string& name, float fallback) {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const float v = std::strtof(it->second.c_str(), &end);
  if (errno != 0 || end == it->second.c_str() || *end != '\0' || !std::isfinite(v)) {
    if (error_.empty()) error_ = "--" + name + " '" + it->second + "' is not a finite number";
    return fallback;
  }
  return v;
}

bool Args::reject_unknown(const std::vector<std::string>& known) {
  for (const auto& kv : values_) {
    if (std::find(known.begin(), known.end(), kv.first) == known.end()) {
      if (error_.empty()) error_ = "unknown option --" + kv.first;
      return false;
    }
  }
  return true;
}

bool parse_token_list(const std::string& text, std::vector<int32_t>* ids, std::string* error) {
  ids->clear();
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == ',' || c == '\t' || c == '\n' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    size_t j = i;
    if (text[j] == '-') ++j;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    const std::string word = text.substr(i, j - i);
    if (word.empty() || word == "-" || (j < text.size() && std::string(" ,\t\n[]").find(text[j]) == std::string::npos)) {
      *error = "token list: '" + text.substr(i, 16) + "' is not an integer id";
      return false;
    }
    errno = 0;
    const long long v = std::strtoll(word.c_str(), nullptr, 10);
    if (errno != 0 || v < INT32_MIN || v > INT32_MAX) {
      *error = "token list: '" + word + "' is out of range";
      return false;
    }
    ids->push_back(static_cast<int32_t>(v));
    i = j;
  }
  return true;
}

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "bitmamba: %s\n", message.c_str());
  return code;
}

}  // namespace bitmamba::cli
