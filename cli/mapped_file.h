// A model file mapped into memory, copy-on-write: the loader repacks the
// ternary tensors in place, which copies only those pages (~51 MB of the
// 255M file) while the 206 MB embedding stays shared with the page cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace bitmamba::cli {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  Status open(const std::string& path);
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Peak resident set size of this process in MiB.
double peak_rss_mib();

}  // namespace bitmamba::cli
