#pragma once
// SpoolPreallocation: keeps zero-filled, allocated space in LMDB's data file ahead
// of the last page in use.
//
// Why: LMDB (without MDB_WRITEMAP) appends new pages with pwrite. On ext4 and most
// journaling file systems, fdatasync of a write that extends a file or fills a hole
// must also commit the allocation and the new size to the journal: one or two more
// device flushes on every commit of a spool that only grows (held mail). Pages that
// already exist as written zeros are plain overwrites, and the commit's fdatasync
// flushes only data. One allocation is paid every few megabytes instead of on every
// commit. fallocate() is not enough: ext4 records its blocks as unwritten extents,
// and converting them on first write is again a journal commit.
//
// Safe because it runs on the writer thread between commits (LMDB has one writer,
// and no transaction is open), only writes beyond the last page of the last commit
// (pages LMDB has never written nor read since), and never past the map size.
#include <lmdb.h>

#include <cstdint>

namespace holdd {

class SpoolPreallocation {
 public:
  // `enabled` false (SpoolOptions::preallocate) makes top_up() a no-op, to measure
  // what it buys.
  explicit SpoolPreallocation(MDB_env* env, bool enabled);

  // Extends the data file with zeros when less than the headroom is left beyond
  // LMDB's last page, then fdatasyncs it. The headroom and step grow with the file
  // (1/8 of it, between 4 and 64 MiB), so a small spool stays small. Errors (disk
  // full) are logged once and end preallocation until the next success would be
  // possible again; LMDB then extends the file itself, as without this class.
  // REQUIRES: on the writer thread, no write transaction open.
  void top_up();

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  MDB_env* env_;
  bool enabled_;
  uint64_t bytes_written_ = 0;
  int64_t failed_at_us_ = 0;  // last failure: retried at most once a minute
};

}  // namespace holdd
