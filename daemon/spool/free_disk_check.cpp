// FreeDiskCheck: statvfs() of the spool directory against min_free_disk.
#include "holdd/spool/free_disk_check.h"

#include <sys/statvfs.h>

#include <spdlog/spdlog.h>

#include <utility>

#include "holdd/base/clock.h"

namespace holdd {

FreeDiskCheck::FreeDiskCheck(std::string path, uint64_t min_free)
    : path_(std::move(path)), min_free_(min_free) {}

void FreeDiskCheck::refresh() {
  struct statvfs vfs {};
  if (statvfs(path_.c_str(), &vfs) != 0) return;
  uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  free_.store(free_bytes);
  bool low = free_bytes < min_free_;
  if (low != low_.exchange(low)) {
    if (low) {
      spdlog::error("spool: free disk {} bytes is below min_free_disk {}: intake answers 452",
                    free_bytes, min_free_);
    } else {
      spdlog::info("spool: free disk {} bytes is above min_free_disk again", free_bytes);
    }
  }
}

bool FreeDiskCheck::is_low() {
  int64_t now = now_unix_micros();
  if (now - checked_us_.load() > 1'000'000) {
    checked_us_ = now;
    refresh();
  }
  return low_.load();
}

}  // namespace holdd
