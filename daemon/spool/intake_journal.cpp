// IntakeJournal: the append-only file that makes an accepted put durable before
// its LMDB commit, and reads it back at recovery (intake_journal.h).
#include "holdd/spool/intake_journal.h"

#include "holdd/spool/zero_fill.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace holdd {

namespace {

constexpr uint32_t kMagic = 0x314A4448;  // "HDJ1" read as little-endian bytes
constexpr uint64_t kMaxRecord = 1ull << 31;

void put_u32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Header: magic, head length, bulk length, CRC-32 (over the header with this field
// zero, then head and bulk), epoch, sequence.
struct Header {
  unsigned char bytes[IntakeJournal::kHeaderSize] = {};
};

uint32_t record_crc(const Header& h, std::string_view head, std::string_view bulk) {
  Header copy = h;
  put_u32(copy.bytes + 12, 0);
  boost::crc_32_type crc;
  crc.process_bytes(copy.bytes, sizeof copy.bytes);
  crc.process_bytes(head.data(), head.size());
  crc.process_bytes(bulk.data(), bulk.size());
  return crc.checksum();
}

bool read_exact(int fd, void* into, size_t n, uint64_t offset) {
  auto* p = static_cast<char*>(into);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

Status errno_status(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return Status::no_space(std::move(msg));
  return Status::io_error(std::move(msg));
}

}  // namespace

IntakeJournal::IntakeJournal(int fd, std::string path, uint64_t epoch, uint64_t capacity)
    : fd_(fd), path_(std::move(path)), epoch_(epoch), capacity_(capacity), readable_(capacity) {}

IntakeJournal::~IntakeJournal() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<IntakeJournal>> IntakeJournal::open(const std::string& path, uint64_t epoch,
                                                           uint64_t capacity) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("cannot open spool journal " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return Status::io_error("spool journal " + path +
                              " is locked: another holdd is using this spool");
    }
    return errno_status("cannot lock spool journal " + path, err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_status("cannot stat spool journal " + path, err);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < capacity) {
    Status s = zero_fill(fd, size, capacity);
    if (!s.is_ok()) {
      // Records already there are still recovered; new ones go to LMDB directly.
      spdlog::warn("spool: cannot preallocate the journal {} ({}): every write commits LMDB",
                   path, s.to_string());
      auto journal = std::unique_ptr<IntakeJournal>(new IntakeJournal(fd, path, epoch, 0));
      journal->readable_ = size;
      return journal;
    }
    // The file's name must be durable too before any record in it is acknowledged:
    // if that cannot be made sure, the journal takes no records (every write
    // commits LMDB, which does not depend on this file).
    std::string dir = std::filesystem::path(path).parent_path().string();
    int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = dfd < 0 ? errno : 0;
    if (dfd >= 0) {
      if (::fsync(dfd) != 0) err = errno;
      ::close(dfd);
    }
    if (err != 0) {
      spdlog::warn("spool: cannot fsync the spool directory {} after creating the journal ({}): "
                   "every write commits LMDB",
                   dir, std::strerror(err));
      auto journal = std::unique_ptr<IntakeJournal>(new IntakeJournal(fd, path, epoch, 0));
      journal->readable_ = capacity;
      return journal;
    }
  }
  auto journal = std::unique_ptr<IntakeJournal>(new IntakeJournal(fd, path, epoch, capacity));
  journal->readable_ = std::max(size, capacity);  // records of a larger journal before
  return journal;
}

std::vector<RecoveredRecord> IntakeJournal::recover(uint64_t applied) {
  std::vector<RecoveredRecord> out;
  uint64_t offset = 0;
  uint64_t expected = applied + 1;
  const uint64_t end = std::max(capacity_, readable_);
  while (offset + kHeaderSize <= end) {
    Header h;
    if (!read_exact(fd_, h.bytes, kHeaderSize, offset)) break;
    if (get_u32(h.bytes) != kMagic || get_u64(h.bytes + 16) != epoch_ ||
        get_u64(h.bytes + 24) != expected) {
      break;
    }
    const uint64_t head_len = get_u32(h.bytes + 4), bulk_len = get_u32(h.bytes + 8);
    if (head_len + bulk_len > kMaxRecord || offset + kHeaderSize + head_len + bulk_len > end) {
      break;
    }
    RecoveredRecord r;
    r.seq = expected;
    r.head.resize(head_len);
    r.bulk.resize(bulk_len);
    if (!read_exact(fd_, r.head.data(), head_len, offset + kHeaderSize) ||
        !read_exact(fd_, r.bulk.data(), bulk_len, offset + kHeaderSize + head_len)) {
      break;
    }
    if (record_crc(h, r.head, r.bulk) != get_u32(h.bytes + 12)) {
      spdlog::warn("spool: journal record {} at offset {} fails its checksum: the journal ends there",
                   expected, offset);
      break;
    }
    offset += kHeaderSize + head_len + bulk_len;
    ++expected;
    out.push_back(std::move(r));
  }
  offset_ = 0;
  next_seq_ = applied + 1;
  return out;
}

void IntakeJournal::restart(uint64_t applied) {
  offset_ = 0;
  broken_ = false;
  next_seq_ = applied + 1;
}

bool IntakeJournal::fits(uint64_t payload_bytes, size_t count) const {
  return !broken_ && offset_ + payload_bytes + kHeaderSize * count <= capacity_;
}

Status IntakeJournal::append(const std::vector<const JournalRecord*>& records) {
  if (records.empty()) return Status::ok();
  std::vector<Header> headers(records.size());
  std::vector<iovec> iov;
  iov.reserve(records.size() * 3);
  uint64_t total = 0;
  uint64_t seq = next_seq_;
  for (size_t i = 0; i < records.size(); ++i) {
    const JournalRecord& r = *records[i];
    std::string_view bulk = r.bulk ? std::string_view(*r.bulk) : std::string_view();
    if (r.payload_size() > kMaxRecord) return Status::invalid("journal record too large");
    Header& h = headers[i];
    put_u32(h.bytes, kMagic);
    put_u32(h.bytes + 4, static_cast<uint32_t>(r.head.size()));
    put_u32(h.bytes + 8, static_cast<uint32_t>(bulk.size()));
    put_u64(h.bytes + 16, epoch_);
    put_u64(h.bytes + 24, seq++);
    put_u32(h.bytes + 12, record_crc(h, r.head, bulk));
    iov.push_back(iovec{h.bytes, kHeaderSize});
    if (!r.head.empty()) iov.push_back(iovec{const_cast<char*>(r.head.data()), r.head.size()});
    if (!bulk.empty()) iov.push_back(iovec{const_cast<char*>(bulk.data()), bulk.size()});
    total += kHeaderSize + r.payload_size();
  }
  if (offset_ + total > capacity_) return Status::no_space("spool journal full");
  // From here a failure burns the sequence numbers: the records may be on disk,
  // whole, and the requests they carry are then committed to LMDB instead (or
  // fail). Reusing the numbers would let such a record pass for a later one.
  // Nor may a later record follow them at this offset with a number that does
  // not continue the file: no append until the next restart().
  next_seq_ = seq;
  broken_ = true;
  // pwritev takes at most IOV_MAX pieces at a time, and may write less than asked.
  uint64_t offset = offset_;
  size_t first = 0;
  while (first < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t w = ::pwritev(fd_, iov.data() + first, count, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return errno_status("spool journal write", w < 0 ? errno : EIO);
    offset += static_cast<uint64_t>(w);
    size_t done = static_cast<size_t>(w);
    while (first < iov.size() && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (done > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  if (fail_sync_ && fail_sync_()) return errno_status("spool journal fdatasync (injected)", EIO);
  if (::fdatasync(fd_) != 0) return errno_status("spool journal fdatasync", errno);
  offset_ += total;
  broken_ = false;
  ++appends_;
  return Status::ok();
}

}  // namespace holdd
