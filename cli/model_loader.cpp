#include "cli/model_loader.h"

#include <chrono>

namespace bitmamba::cli {

LoadFlags parse_load_flags(Args& args) {
  LoadFlags flags;
  flags.threads = static_cast<int>(args.get_int("threads", 1, 1, 256));
  flags.isa = args.get("isa", "");
  return flags;
}

Status load_model(const std::string& path, const LoadFlags& flags, LoadedModel* out) {
  LoadOptions options;
  options.threads = flags.threads;
  options.isa = flags.isa.empty() ? nullptr : flags.isa.c_str();
  const auto start = std::chrono::steady_clock::now();
  Status st = out->file.open(path);
  if (!st.ok()) return st;
  st = Model::load(out->file.data(), out->file.size(), options, &out->model);
  if (!st.ok()) return make_error(st.code, path + ": " + st.message);
  out->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

}  // namespace bitmamba::cli
