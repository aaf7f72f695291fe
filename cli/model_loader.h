// Maps a model file and loads it: what every CLI command starts with.
#pragma once

#include <memory>
#include <string>

#include "cli/args.h"
#include "cli/mapped_file.h"
#include "core/bitmamba.h"

namespace bitmamba::cli {

struct LoadedModel {
  MappedFile file;  // must outlive model
  std::unique_ptr<Model> model;
  double load_ms = 0;
};

// --threads and --isa, the flags of every command that loads a model.
struct LoadFlags {
  int threads = 1;
  std::string isa;  // empty: the best kernels this CPU has
};

// Reads --threads (1..256) and --isa. A malformed --threads is a usage error
// recorded in `args` like any other, so call this where the command reads
// its flags, before it checks args.ok().
LoadFlags parse_load_flags(Args& args);

// Errors name the file; the caller reports them with exit code kExitError.
Status load_model(const std::string& path, const LoadFlags& flags, LoadedModel* out);

}  // namespace bitmamba::cli
