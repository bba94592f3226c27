#pragma once
// FreeDiskCheck: the free space on the spool's file system against min_free_disk,
// so that intake refuses mail (452 4.3.1) while there is still room to work, and
// tells a full disk from other write errors. statvfs() is cheap but not free, so
// the intake path asks at most once a second. Thread-safe.
#include <atomic>
#include <cstdint>
#include <string>

namespace holdd {

class FreeDiskCheck {
 public:
  FreeDiskCheck(std::string path, uint64_t min_free);

  // Asks the file system now; logs when the free space crosses min_free either
  // way. A failed statvfs() leaves the last answer as it was.
  void refresh();
  // True while the free space is below min_free, refreshed when the last answer is
  // more than a second old.
  bool is_low();
  // As of the last refresh.
  bool was_low() const { return low_.load(); }
  uint64_t free_bytes() const { return free_.load(); }

 private:
  std::string path_;
  uint64_t min_free_;
  std::atomic<int64_t> checked_us_{0};  // when is_low() last refreshed
  std::atomic<bool> low_{false};
  std::atomic<uint64_t> free_{0};
};

}  // namespace holdd
