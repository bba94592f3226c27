// zero_fill: extends a file with written, flushed zeros (zero_fill.h).
#include "holdd/spool/zero_fill.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

namespace holdd {

namespace {
Status errno_status(const char* what, int err) {
  std::string msg = std::string(what) + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::no_space(std::move(msg));
  return Status::io_error(std::move(msg));
}
}  // namespace

Status zero_fill(int fd, uint64_t from, uint64_t to) {
  static const std::vector<char> zeros(1 << 20, 0);
  for (uint64_t offset = from; offset < to;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), to - offset));
    ssize_t w = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : ENOSPC;
      if (::ftruncate(fd, static_cast<off_t>(from)) != 0) {
        spdlog::debug("spool: ftruncate after a failed zero fill: {}", std::strerror(errno));
      }
      return errno_status("write", err);
    }
    offset += static_cast<uint64_t>(w);
  }
  if (::fdatasync(fd) != 0) return errno_status("fdatasync", errno);
  return Status::ok();
}

}  // namespace holdd
