#include "core/status.h"

namespace bitmamba {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kBadModel: return "bad_model";
    case ErrorCode::kBadState: return "bad_state";
    case ErrorCode::kBadText: return "bad_text";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kAborted: return "aborted";
  }
  return "unknown";
}

}  // namespace bitmamba
