// The CLI's argument parser on arbitrary command lines (the input split at
// NUL bytes into argv), and its token-list parser on arbitrary text: either
// a usage error with a message, or values that respect the requested ranges.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/args.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bitmamba::cli;
  const std::string input(reinterpret_cast<const char*>(data), size);

  std::vector<std::string> words;
  size_t start = 0;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\0') {
      words.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  Args args(static_cast<int>(argv.size()), argv.data(), {"json", "help"});
  if (!args.ok()) {
    FUZZ_CHECK(!args.error().empty(), "error without a message");
  } else {
    const int64_t n = args.get_int("max-tokens", 7, 0, 1000);
    FUZZ_CHECK(n >= 0 && n <= 1000, "get_int out of range: %lld", static_cast<long long>(n));
    const float t = args.get_float("temperature", 0.5f);
    FUZZ_CHECK(t == t && t - t == 0, "get_float not finite");
    args.get("out", "");
    args.reject_unknown({"max-tokens", "temperature", "out", "json"});
    FUZZ_CHECK(args.ok() || !args.error().empty(), "error without a message");
  }

  std::vector<int32_t> ids;
  std::string error;
  if (!parse_token_list(input, &ids, &error)) FUZZ_CHECK(!error.empty(), "token list error without a message");
  return 0;
}
