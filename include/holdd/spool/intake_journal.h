#pragma once
// IntakeJournal: an append-only, preallocated log that makes an accepted message
// durable with one sequential write and one fdatasync, so that "250 queued" does
// not wait for an LMDB commit.
//
// Why: an LMDB commit of one 4 KiB message rewrites about ten pages scattered over
// the data file (copy-on-write leaves of four tables, the main root, the free list)
// and flushes twice (data pages, then the meta page). On the virtual disks holdd
// runs on, each scattered page and each flush is paid on every commit. The journal
// writes one contiguous record into space that already exists as written zeros and
// flushes once. The writer keeps applying every request to an LMDB transaction as
// before, and commits that transaction (both flushes) only every few milliseconds,
// or at once for any request that is not a message put.
//
// Recovery: each LMDB commit records the sequence number of the last journal
// record it contains (Spool's info table). At open, records after it are applied
// again, in order. Records start at offset 0 after every LMDB commit, each with
// its sequence number, the spool's epoch (random, chosen when the spool is
// created) and a CRC-32 over the whole record, so a record is replayed only when
// it is whole, of this spool, and the next one expected; the first record that is
// not ends the journal.
//
// Crash safety: a record is acknowledged only after fdatasync of the file. The
// file never grows during appends (it is preallocated at open), so fdatasync
// flushes data only. The file is never truncated; stale records left behind by a
// previous cycle have sequence numbers at or below the one LMDB recorded, and are
// ignored.
//
// REQUIRES: used from one thread (the GroupCommitWriter's) after open/recover.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/base/status.h"

namespace holdd {

// One journal record: a short encoded request and the bulk it carries (a message's
// content, shared with the request that holds it: not copied to be journaled).
struct JournalRecord {
  std::string head;
  std::shared_ptr<const std::string> bulk;  // may be null
  uint64_t payload_size() const { return head.size() + (bulk ? bulk->size() : 0); }
};

// A record read back at recovery.
struct RecoveredRecord {
  uint64_t seq = 0;
  std::string head;
  std::string bulk;
};

class IntakeJournal {
 public:
  static constexpr uint64_t kHeaderSize = 32;
  static constexpr uint64_t kDefaultCapacity = 8ull << 20;

  // Opens (creating and preallocating with zeros if needed) the journal file at
  // `path` and takes an exclusive lock on it: a second holdd on the same spool
  // fails here instead of interleaving records.
  static Result<std::unique_ptr<IntakeJournal>> open(const std::string& path, uint64_t epoch,
                                                     uint64_t capacity = kDefaultCapacity);
  ~IntakeJournal();
  IntakeJournal(const IntakeJournal&) = delete;
  IntakeJournal& operator=(const IntakeJournal&) = delete;

  // The records after `applied`, in order (see the header comment). Also makes
  // the next append start at offset 0 with sequence applied + 1 (or after the
  // last record returned, once the caller has committed them: see restart()).
  std::vector<RecoveredRecord> recover(uint64_t applied);

  // After an LMDB commit that holds every record up to `applied`: the next append
  // starts again at offset 0, with sequence applied + 1.
  void restart(uint64_t applied);

  // Whether records with this total payload (and `count` headers) fit in what is
  // left of the file.
  bool fits(uint64_t payload_bytes, size_t count) const;
  uint64_t capacity() const { return capacity_; }

  // Writes the records (sequences last_seq()+1, ...) and fdatasyncs. On success
  // they are durable. On failure nothing may be acknowledged: the caller commits
  // the requests to LMDB instead; their sequence numbers are used up, and fits()
  // is false until the next restart().
  Status append(const std::vector<const JournalRecord*>& records);
  uint64_t last_seq() const { return next_seq_ - 1; }
  // Records since the last restart().
  bool empty() const { return offset_ == 0; }

  uint64_t appends() const { return appends_; }

  // Tests only: when set and it returns true, an append writes its records and then
  // fails as a failed fdatasync would (EIO), the worst case: whole records on disk
  // that nobody was told are durable.
  void inject_sync_failure(std::function<bool()> fail) { fail_sync_ = std::move(fail); }

 private:
  IntakeJournal(int fd, std::string path, uint64_t epoch, uint64_t capacity);
  int fd_;
  std::string path_;
  uint64_t epoch_;
  uint64_t capacity_;  // 0 when the file could not be preallocated: no appends
  uint64_t readable_;  // what recover() reads
  uint64_t offset_ = 0;    // where the next record goes
  uint64_t next_seq_ = 1;  // sequence of the next record
  uint64_t appends_ = 0;
  bool broken_ = false;  // an append failed since the last restart()
  std::function<bool()> fail_sync_;
};

}  // namespace holdd
