// Error values: bad input anywhere becomes a Status, never an abort or a
// throw across the API (an abort would kill the browser's wasm instance).
#pragma once

#include <string>

namespace bitmamba {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // a parameter out of range, NaN, an id outside the vocabulary
  kBadModel,         // a model file that is not a valid BIT2 file
  kBadState,         // a snapshot that does not belong to this model
  kBadText,          // invalid UTF-8 or tokenizer data
  kIo,               // a file that cannot be opened or read
  kAborted,          // stopped by the caller
};

// Stable lower-case names, used in CLI messages and as JS error codes.
const char* error_code_name(ErrorCode code);

struct Status {
  ErrorCode code = ErrorCode::kOk;
  std::string message;

  bool ok() const { return code == ErrorCode::kOk; }
  static Status Ok() { return {}; }
};

inline Status make_error(ErrorCode code, std::string message) { return Status{code, std::move(message)}; }

}  // namespace bitmamba
