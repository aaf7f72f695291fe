// A small flag parser for the CLI: `--name value` and `--flag`, positionals
// in order. Bad usage is reported once and becomes exit code 2.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bitmamba::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // runtime or input error (bad model, bad token id, I/O)
constexpr int kExitUsage = 2;  // bad command line

class Args {
 public:
  // `flags` take no value; every other --name takes one.
  Args(int argc, char** argv, std::vector<std::string> flags);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& positionals() const { return positionals_; }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  // The last value given for --name, or `fallback`.
  std::string get(const std::string& name, const std::string& fallback);
  // Every value given for a repeatable --name, in order.
  std::vector<std::string> get_all(const std::string& name) const;
  // These record a usage error (and return the fallback) on a malformed value.
  int64_t get_int(const std::string& name, int64_t fallback, int64_t min, int64_t max);
  float get_float(const std::string& name, float fallback);
  // 0 .. 2^64-1 in decimal (a seed: the browser API takes the whole range).
  uint64_t get_u64(const std::string& name, uint64_t fallback);

  // Names given on the command line that are not in `known`: a usage error.
  bool reject_unknown(const std::vector<std::string>& known);

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, std::vector<std::string>> all_values_;
  std::vector<std::string> positionals_;
  std::string error_;
};

// "15496 11 314" or "15496,11,314" -> ids; false with a message on junk.
bool parse_token_list(const std::string& text, std::vector<int32_t>* ids, std::string* error);

// Prints "bitmamba: message" to stderr and returns `code`.
int fail(int code, const std::string& message);

}  // namespace bitmamba::cli
