#pragma once
// WriteTxn is what one write request sees of LMDB: a nested transaction inside the
// group commit's batch transaction. Changes become durable when the batch commits
// (or, for a request that gives a journal record, when that record is journaled); if the request fails its nested transaction is aborted and the rest of
// the batch is unaffected. REQUIRES: used only on the GroupCommitWriter's thread.
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
  explicit WriteTxn(MDB_txn* txn) : txn_(txn) {}

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
  Status check(int rc, std::string_view what);
  MDB_txn* txn_;
  bool map_full_ = false;
  std::vector<std::function<void()>> after_commit_;
  std::optional<JournalRecord> journal_;
};

}  // namespace holdd
