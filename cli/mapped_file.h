// A model file in private memory the loader may repack in place.
//
// Read into an anonymous mapping advised for transparent huge pages rather
// than mapped copy-on-write: with 4 KiB pages, the repack's copy-on-write
// faults (13 000 for the 255M file) and first touches cost ~1 s on the VMs we
// measured (up to 70 us per fault); 2 MiB pages cut the load to the copy
// from the page cache plus the validation scan, and decode takes fewer TLB
// misses while it streams the weights. The resident size is the file's, as
// with a mapping. The wasm build reads the file into a heap buffer instead
// (mapped_file.cpp holds the CLI's only platform differences).
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
  size_t mapped_ = 0;  // bytes of the anonymous mapping (size_ rounded up)
};

// Peak resident set size of this process in MiB.
double peak_rss_mib();

// The wasm build's linear memory in MiB (it only grows, so this is its
// peak); 0 natively, where there is none.
double wasm_memory_mib();

}  // namespace bitmamba::cli
