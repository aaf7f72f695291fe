#include "cli/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bitmamba::cli {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kReadChunk = size_t{64} << 20;

}  // namespace

MappedFile::~MappedFile() {
  if (mapped_ != 0) munmap(data_, mapped_);
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
  const size_t mapped = (size_ + kHugePage - 1) / kHugePage * kHugePage;
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::close(fd);
    size_ = 0;
    return make_error(ErrorCode::kIo, "cannot allocate " + std::to_string(mapped) + " bytes for '" + path +
                                          "': " + std::strerror(err));
  }
#if defined(MADV_HUGEPAGE)
  madvise(p, mapped, MADV_HUGEPAGE);  // a hint: without it the load is only slower
#endif
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
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace bitmamba::cli
