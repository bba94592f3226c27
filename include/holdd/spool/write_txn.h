#pragma once
// WriteTxn owns one LMDB write transaction and aborts it unless commit() ran: a
// path that returns early or throws leaves nothing behind. It is also what one
// write request sees of LMDB: the group commit runs each request in a nested
// WriteTxn inside the batch's WriteTxn. Changes become durable when the batch commits
// (or, for a request that gives a journal record, when that record is journaled); if
// the request fails its nested transaction is aborted and the rest of the batch is
// unaffected.
// REQUIRES: used only on the thread that began it (LMDB allows one writer per
// environment: the GroupCommitWriter's thread, or Spool::open before it starts),
// and no nested WriteTxn outlives its parent.
#include <lmdb.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/base/status.h"
#include "holdd/spool/intake_journal.h"

namespace holdd {

inline MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

// An LMDB return code as a Status; MDB_MAP_FULL and ENOSPC are kNoSpace.
Status lmdb_status(int rc, std::string_view what);
// Errors after which LMDB's environment must not be used any more (lmdb.h: "Update
// of meta page failed or environment had fatal error", a corrupt or missing page).
inline bool is_fatal_lmdb_error(int rc) {
  return rc == MDB_PANIC || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND;
}

class WriteTxn {
 public:
  // Begins a write transaction in `env`, nested in `parent` when it is not null,
  // into `out`. Returns LMDB's code (not a Status: the group commit tells fatal
  // codes apart); on failure `out` is left empty.
  static int begin(MDB_env* env, WriteTxn* parent, std::optional<WriteTxn>& out);

  ~WriteTxn();  // aborts, unless committed
  WriteTxn(WriteTxn&& other) noexcept;
  WriteTxn& operator=(WriteTxn&& other) noexcept;
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;

  // Commits and returns LMDB's code (MDB_MAP_FULL: grow the map and run the whole
  // transaction again). Afterwards the transaction is gone, committed or not: LMDB
  // frees a transaction whose commit failed. A nested commit only hands the
  // changes to the parent.
  int commit();

  MDB_txn* get() const { return txn_; }
  // nullopt when absent; the view is valid until the next write in this txn.
  std::optional<std::string_view> read(MDB_dbi dbi, std::string_view key) const;
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  Status erase(MDB_dbi dbi, std::string_view key);  // absent is not an error

  // True once an operation failed with MDB_MAP_FULL: the writer grows the map and
  // runs the whole batch again.
  bool map_full() const { return map_full_; }
  // Runs after the batch is committed to LMDB (on the writer thread), only if this
  // request succeeded: in-memory views (totals, the dispatcher's wake-ups) follow
  // what readers of LMDB see, never ahead of it.
  void after_commit(std::function<void()> f) { after_commit_.push_back(std::move(f)); }
  std::vector<std::function<void()>>& after_commit_hooks() { return after_commit_; }
  // Says that `record` describes this request completely (the Spool's replay
  // applies it again to the same effect): the writer may then make the request
  // durable by journaling the record, and commit LMDB later (IntakeJournal).
  void journal(JournalRecord record) { journal_ = std::move(record); }
  std::optional<JournalRecord>& journal_record() { return journal_; }

 private:
  explicit WriteTxn(MDB_txn* txn) : txn_(txn) {}  // takes ownership
  Status check(int rc, std::string_view what);
  MDB_txn* txn_;  // null once committed, aborted or moved from
  bool map_full_ = false;
  std::vector<std::function<void()>> after_commit_;
  std::optional<JournalRecord> journal_;
};

}  // namespace holdd
