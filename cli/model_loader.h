// Maps a model file and loads it: what every CLI command starts with.
#pragma once

#include <memory>
#include <string>

#include "cli/mapped_file.h"
#include "core/bitmamba.h"

namespace bitmamba::cli {

struct LoadedModel {
  MappedFile file;  // must outlive model
  std::unique_ptr<Model> model;
  double load_ms = 0;
};

Status load_model(const std::string& path, const LoadOptions& options, LoadedModel* out);

}  // namespace bitmamba::cli
