#include "cli/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#include <emscripten/heap.h>
#endif

namespace bitmamba::cli {

namespace {

constexpr size_t kReadChunk = size_t{64} << 20;

// The only platform difference of the CLI. Natively: an anonymous mapping
// rounded up to huge pages. In wasm there are no pages to choose, only the
// heap: a malloc'd buffer (what the page's engine loads from, too).
void* allocate_private(size_t size, size_t* allocated) {
#ifdef __EMSCRIPTEN__
  *allocated = size;
  return std::malloc(size);
#else
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t mapped = (size + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#if defined(MADV_HUGEPAGE)
  madvise(p, mapped, MADV_HUGEPAGE);  // a hint: without it the load is only slower
#endif
  *allocated = mapped;
  return p;
#endif
}

void release_private(void* p, size_t allocated) {
#ifdef __EMSCRIPTEN__
  (void)allocated;
  std::free(p);
#else
  munmap(p, allocated);
#endif
}

#ifdef __EMSCRIPTEN__
// getrusage() is a stub in wasm; Node knows the process's peak (in KiB).
EM_JS(double, node_max_rss_kib, (), { return process.resourceUsage().maxRSS; });
#endif

}  // namespace

MappedFile::~MappedFile() {
  if (mapped_ != 0) release_private(data_, mapped_);
}

Status MappedFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kIo, "cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kIo, "'" + path + "' is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    static uint8_t empty;
    data_ = &empty;  // the parser reports the empty file
    return Status::Ok();
  }
  size_t mapped = 0;
  void* p = allocate_private(size_, &mapped);
  if (p == nullptr) {
    const int err = errno;
    ::close(fd);
    const size_t wanted = size_;
    size_ = 0;
    return make_error(ErrorCode::kIo, "cannot allocate " + std::to_string(wanted) + " bytes for '" + path +
                                          "': " + std::strerror(err));
  }
  data_ = static_cast<uint8_t*>(p);
  mapped_ = mapped;
  size_t done = 0;
  while (done < size_) {
    const size_t want = size_ - done < kReadChunk ? size_ - done : kReadChunk;
    const ssize_t got = pread(fd, data_ + done, want, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string why = got < 0 ? std::strerror(errno) : "the file shrank while it was read";
      ::close(fd);
      return make_error(ErrorCode::kIo, "cannot read '" + path + "' at byte " + std::to_string(done) + ": " + why);
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return Status::Ok();
}

double peak_rss_mib() {
#ifdef __EMSCRIPTEN__
  return node_max_rss_kib() / 1024.0;
#else
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
#endif
}

double wasm_memory_mib() {
#ifdef __EMSCRIPTEN__
  return static_cast<double>(emscripten_get_heap_size()) / (1024.0 * 1024.0);
#else
  return 0;
#endif
}

}  // namespace bitmamba::cli
