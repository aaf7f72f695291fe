#include "cli/model_loader.h"

#include <chrono>

namespace bitmamba::cli {

Status load_model(const std::string& path, const LoadOptions& options, LoadedModel* out) {
  const auto start = std::chrono::steady_clock::now();
  Status st = out->file.open(path);
  if (!st.ok()) return st;
  st = Model::load(out->file.data(), out->file.size(), options, &out->model);
  if (!st.ok()) return make_error(st.code, path + ": " + st.message);
  out->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

}  // namespace bitmamba::cli
