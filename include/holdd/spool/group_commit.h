#pragma once
// GroupCommitWriter: LMDB allows one writer per environment, and each commit costs
// an fsync. One thread takes every write request waiting at that moment, runs each
// in a nested transaction of one batch transaction, and commits the batch with one
// fsync, so intake throughput grows with the number of concurrent sessions instead
// of stopping at the disk's fsync rate.
//
// With an IntakeJournal, a batch whose every request gave a journal record (message
// puts) is made durable by appending the records to the journal (one sequential
// write, one fdatasync) and the batch transaction stays open: later batches are
// applied to it too, and it is committed to LMDB when a request without a record
// arrives (state changes, deliveries, sync()), when the journal is full, or at most
// `max_delay` after its first journaled request. Until then readers do not see the
// journaled requests; their after_commit hooks run at that commit.
#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "holdd/base/status.h"
#include "holdd/spool/intake_journal.h"
#include "holdd/spool/write_txn.h"

namespace holdd {

// How a GroupCommitWriter uses an IntakeJournal (see above).
struct GroupCommitJournaling {
  IntakeJournal* journal = nullptr;  // null: every batch is committed to LMDB
  // Applies a journaled record again, after the transaction holding it was
  // aborted (map full, failed commit); it registers the same hooks as the
  // request did.
  std::function<Status(WriteTxn&, const JournalRecord&)> replay;
  // Records in `txn` that LMDB holds every journal record up to `seq`.
  std::function<Status(WriteTxn& txn, uint64_t seq)> mark_applied;
  std::chrono::microseconds max_delay{10'000};  // journaled, not yet in LMDB
  uint64_t max_bytes = 8ull << 20;              // journaled, not yet in LMDB
  uint64_t max_record = 1ull << 20;             // larger requests commit LMDB
};

class GroupCommitWriter {
 public:
  using Apply = std::function<Status(WriteTxn&)>;  // on the writer thread
  using Done = std::function<void(Status)>;        // on the writer thread, after commit

  using Journaling = GroupCommitJournaling;

  // Bounds one batch, so a burst cannot hold every session behind one huge fsync.
  static constexpr size_t kMaxBatch = 512;

  // `grow_map` is called on the writer thread, with no transaction open, when the
  // map is full; it returns non-OK when the map cannot grow any more.
  // `after_batch` (optional) runs on the writer thread after each LMDB commit's
  // `done` callbacks, with no transaction open (SpoolPreallocation::top_up).
  // `on_fatal` (optional) runs once on the writer thread when LMDB reports an error
  // after which the environment cannot be trusted (MDB_PANIC, MDB_CORRUPTED): every
  // later request then fails at once, and the owner is expected to exit so that a
  // restart recovers from the journal.
  // `max_batch` bounds the requests applied in one batch (1 to kMaxBatch; other
  // values mean kMaxBatch). 1 turns group commit off: only for benchmarks that show
  // what batching buys (SpoolOptions::max_batch).
  GroupCommitWriter(MDB_env* env, std::function<Status()> grow_map,
                    std::function<void()> after_batch = {}, Journaling journaling = {},
                    std::function<void(const Status&)> on_fatal = {},
                    size_t max_batch = kMaxBatch);
  ~GroupCommitWriter();  // stop()

  // Queues a request. `done` gets OK after the batch holding it is durable, or the
  // reason it was not applied (nothing of it is then visible).
  void submit(Apply apply, Done done);
  // Applies what is queued, commits it to LMDB, then stops the thread. Later
  // submits fail at once.
  void stop();

  // False after a fatal LMDB error, or while one batch has been applying or
  // committing for longer than `stall` (a disk that stopped answering): what the
  // systemd watchdog reports, so that a stuck writer is restarted like a stuck
  // event loop.
  bool healthy(std::chrono::nanoseconds stall) const;
  bool failed() const { return fatal_.load(); }

  // Tests only: a non-zero LMDB return code to report instead of committing.
  void inject_commit_error(std::function<int()> error) { commit_error_ = std::move(error); }

  uint64_t commits() const { return commits_.load(); }          // LMDB commits
  uint64_t failed_commits() const { return failed_commits_.load(); }
  uint64_t journaled() const { return journaled_.load(); }      // journal appends
  uint64_t requests() const { return requests_.load(); }
  // Time spent applying requests and committing batches (write + fsync), summed.
  uint64_t apply_ns() const { return apply_ns_.load(); }
  uint64_t commit_ns() const { return commit_ns_.load(); }

 private:
  struct Request {
    Apply apply;
    Done done;
  };
  void run();
  // Applies `batch` and makes it durable; `force_commit` commits to LMDB even when
  // the batch could be journaled (deadline, stop). Returns whether LMDB committed.
  bool commit_batch(std::deque<Request>& batch, bool force_commit);
  // Begins the batch transaction and applies the journaled records it lost.
  Status open_transaction(bool& map_full);
  bool can_journal(const std::vector<std::optional<JournalRecord>>& records,
                   const std::vector<Status>& results) const;
  // Commits the batch transaction (or reports the injected error).
  int commit_open_transaction();
  // After a failed LMDB commit: when to try again, and a log line at most every
  // kFailureLogInterval however often it fails. After a fatal error: on_fatal.
  void note_commit_failure(int rc, const Status& status);
  void note_commit_success();

  MDB_env* env_;
  std::function<Status()> grow_map_;
  std::function<void()> after_batch_;
  Journaling journaling_;
  size_t max_batch_;
  // The batch transaction kept open over journaled batches (empty when none), the
  // records journaled since the last LMDB commit, and their hooks.
  std::optional<WriteTxn> open_;
  std::vector<JournalRecord> carried_;
  std::vector<std::function<void()>> carried_hooks_;
  uint64_t carried_bytes_ = 0;
  std::chrono::steady_clock::time_point carried_since_;
  bool lmdb_failing_ = false;  // the last LMDB commit failed: journal nothing new
  // The last journal sequence that LMDB records as applied. Every LMDB commit
  // brings it up to the journal's last sequence, including numbers that a failed
  // append used up: the next record starts at offset 0 with the number after it,
  // which is the one recovery expects (issue 12: a gap there lost acknowledged mail).
  uint64_t recorded_seq_ = 0;
  // While LMDB commits fail, journaled records wait for a retry at retry_after_,
  // with a delay doubling from 10 ms to 1 s: a full disk must not make the writer
  // spin (issue 12).
  std::chrono::steady_clock::time_point retry_after_{};
  std::chrono::milliseconds retry_delay_{0};
  std::chrono::steady_clock::time_point failure_logged_{};
  uint64_t failures_unlogged_ = 0;
  int last_rc_ = MDB_SUCCESS;  // LMDB's code for the current batch's failure, if any
  std::function<void(const Status&)> on_fatal_;
  std::function<int()> commit_error_;
  std::atomic<bool> fatal_{false};
  // steady_clock nanoseconds when the batch being applied began; 0 while waiting.
  std::atomic<int64_t> busy_since_ns_{0};
  std::atomic<uint64_t> failed_commits_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> pending_;
  bool stopping_ = false;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> journaled_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> apply_ns_{0};
  std::atomic<uint64_t> commit_ns_{0};
  std::atomic<uint64_t> journal_ns_{0};
  std::thread thread_;
};

}  // namespace holdd
