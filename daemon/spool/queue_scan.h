#pragma once
// Walks the queue table with a cursor, decoding entries in key order (one mailbox's
// entries in arrival order; every mailbox's, in byte order of the keys). Private to
// the spool's .cpp files.
#include <lmdb.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "holdd/spool/keys.h"
#include "holdd/spool/records.h"
#include "holdd/spool/write_txn.h"

namespace holdd {

inline bool has_prefix(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Walks the entries of one mailbox (or of all, with an empty prefix) in key order.
// `visit` returns false to stop.
template <class Visit>
void for_each_entry(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, Visit visit) {
  MDB_cursor* cursor = nullptr;
  if (mdb_cursor_open(txn, dbi, &cursor) != MDB_SUCCESS) return;
  MDB_val k = to_val(prefix), v;
  int rc = prefix.empty() ? mdb_cursor_get(cursor, &k, &v, MDB_FIRST)
                          : mdb_cursor_get(cursor, &k, &v, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = to_view(k);
    if (!has_prefix(key, prefix)) break;
    std::string_view mailbox;
    uint64_t seq = 0;
    if (keys::parse_queue_key(key, mailbox, seq)) {
      QueueEntry e;
      if (decode(to_view(v), e)) {
        e.mailbox = std::string(mailbox);
        e.seq = seq;
        if (!visit(std::move(e))) break;
      }
    }
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
}

inline std::optional<QueueEntry> first_entry(MDB_txn* txn, MDB_dbi dbi, std::string_view mailbox) {
  std::optional<QueueEntry> first;
  for_each_entry(txn, dbi, keys::queue_prefix(mailbox), [&](QueueEntry e) {
    first = std::move(e);
    return false;
  });
  return first;
}

}  // namespace holdd
