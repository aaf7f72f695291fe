// Synthetic models for unit tests, made by the CLI's make-model (the same
// maker users run) into the test's temporary directory, once per shape.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "core/bitmamba.h"

namespace bitmamba::testing {

inline std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

inline std::string model_path(int vocab, int d_model, int layers, int heads, int seed) {
  const std::string path = temp_dir() + "/bitmamba_unit_" + std::to_string(vocab) + "_" + std::to_string(d_model) +
                           "_" + std::to_string(layers) + "_" + std::to_string(heads) + "_" + std::to_string(seed) +
                           ".bin";
  std::ifstream probe(path);
  if (!probe) {
    // Test processes run in parallel: each writes its own file, then renames.
    const std::string tmp = path + ".tmp" + std::to_string(::getpid());
    const std::string cmd = std::string(BITMAMBA_CLI) + " make-model --vocab " + std::to_string(vocab) +
                            " --d-model " + std::to_string(d_model) + " --layers " + std::to_string(layers) +
                            " --heads " + std::to_string(heads) + " --seed " + std::to_string(seed) + " --out " +
                            tmp + " 2>/dev/null && mv " + tmp + " " + path;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  return path;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// A loaded model with the bytes it points into.
struct TestModel {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Model> model;
};

inline TestModel load_test_model(int vocab, int d_model, int layers, int heads, int seed = 1, int threads = 1,
                                 const char* isa = nullptr) {
  TestModel t;
  t.bytes = read_file(model_path(vocab, d_model, layers, heads, seed));
  LoadOptions o;
  o.threads = threads;
  o.isa = isa;
  const Status st = Model::load(t.bytes.data(), t.bytes.size(), o, &t.model);
  EXPECT_TRUE(st.ok()) << st.message;
  return t;
}

}  // namespace bitmamba::testing
