// SpoolPreallocation: keeps written zeros ahead of LMDB's last page in data.mdb
// (preallocation.h).
#include "holdd/spool/preallocation.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "holdd/base/clock.h"
#include "holdd/spool/zero_fill.h"

namespace holdd {

namespace {
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kMinStep = 4 * kMiB;
constexpr uint64_t kMaxStep = 64 * kMiB;
constexpr int64_t kRetryAfterFailureUs = 60'000'000;
}  // namespace

SpoolPreallocation::SpoolPreallocation(MDB_env* env, bool enabled) : env_(env), enabled_(enabled) {}

void SpoolPreallocation::top_up() {
  if (!enabled_) return;
  int64_t now = now_unix_micros();
  if (failed_at_us_ != 0 && now - failed_at_us_ < kRetryAfterFailureUs) return;

  MDB_envinfo info{};
  MDB_stat stat{};
  int fd = -1;
  if (mdb_env_info(env_, &info) != MDB_SUCCESS || mdb_env_stat(env_, &stat) != MDB_SUCCESS ||
      mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || fd < 0) {
    return;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  const uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  if (file_size < used) return;  // never write over a page LMDB may use
  const uint64_t step = std::clamp<uint64_t>(file_size / 8, kMinStep, kMaxStep);
  if (file_size >= used + step) return;  // enough ahead
  const uint64_t target = std::min<uint64_t>(used + 2 * step, info.me_mapsize);
  if (target <= file_size) return;

  if (Status s = zero_fill(fd, file_size, target); !s.is_ok()) {
    spdlog::warn("spool: cannot preallocate {} bytes in the data file: {} (commits go on, slower)",
                 target - file_size, s.message());
    failed_at_us_ = now;
    return;
  }
  failed_at_us_ = 0;
  bytes_written_ += target - file_size;
  spdlog::debug("spool: data file preallocated from {} to {} bytes ({} in use)", file_size, target, used);
}

}  // namespace holdd
