// GroupCommitWriter: the one writer thread, which applies waiting write requests in
// one LMDB transaction and makes each batch durable with one journal append or one
// LMDB commit (group_commit.h).
#include "holdd/spool/group_commit.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace holdd {

namespace {
constexpr int kMaxMapGrowths = 8;  // per batch

constexpr std::chrono::milliseconds kFirstRetryDelay{10};
constexpr std::chrono::milliseconds kMaxRetryDelay{1000};
constexpr std::chrono::seconds kFailureLogInterval{10};

uint64_t elapsed_ns(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}
}  // namespace

GroupCommitWriter::GroupCommitWriter(MDB_env* env, std::function<Status()> grow_map,
                                     std::function<void()> after_batch, Journaling journaling,
                                     std::function<void(const Status&)> on_fatal, size_t max_batch)
    : env_(env), grow_map_(std::move(grow_map)), after_batch_(std::move(after_batch)),
      journaling_(std::move(journaling)),
      max_batch_(max_batch >= 1 && max_batch <= kMaxBatch ? max_batch : kMaxBatch),
      recorded_seq_(journaling_.journal != nullptr ? journaling_.journal->last_seq() : 0),
      on_fatal_(std::move(on_fatal)), thread_([this] { run(); }) {}

bool GroupCommitWriter::healthy(std::chrono::nanoseconds stall) const {
  if (fatal_.load()) return false;
  const int64_t since = busy_since_ns_.load();
  if (since == 0) return true;
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  return now - since < stall.count();
}

int GroupCommitWriter::commit_open_transaction() {
  int rc = commit_error_ ? commit_error_() : MDB_SUCCESS;
  if (rc == MDB_SUCCESS) rc = open_->commit();
  open_.reset();  // aborts it when the injected error stood in for the commit
  return rc;
}

void GroupCommitWriter::note_commit_failure(int rc, const Status& status) {
  failed_commits_.fetch_add(1);
  const auto now = std::chrono::steady_clock::now();
  retry_delay_ = std::clamp(retry_delay_ * 2, kFirstRetryDelay, kMaxRetryDelay);
  retry_after_ = now + retry_delay_;
  if (is_fatal_lmdb_error(rc)) {
    if (!fatal_.exchange(true)) {
      spdlog::critical("spool: LMDB reports {}: the spool cannot be trusted any more; holdd must "
                       "restart (acknowledged mail is in the journal or in LMDB's last commit)",
                       status.to_string());
      if (on_fatal_) on_fatal_(status);
    }
    return;
  }
  if (now - failure_logged_ >= kFailureLogInterval) {
    spdlog::error("spool: LMDB commit failed ({}){}; {} journaled messages wait in the journal, "
                  "next try in {} ms",
                  status.to_string(),
                  failures_unlogged_ > 0
                      ? fmt::format(" ({} more failures since the last report)", failures_unlogged_)
                      : std::string(),
                  carried_.size(), retry_delay_.count());
    failure_logged_ = now;
    failures_unlogged_ = 0;
  } else {
    ++failures_unlogged_;
  }
}

void GroupCommitWriter::note_commit_success() {
  if (retry_delay_.count() > 0) spdlog::info("spool: LMDB commits work again");
  retry_delay_ = std::chrono::milliseconds(0);
  retry_after_ = {};
  failures_unlogged_ = 0;
}

GroupCommitWriter::~GroupCommitWriter() { stop(); }

void GroupCommitWriter::submit(Apply apply, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      pending_.push_back(Request{std::move(apply), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(Status::cancelled("spool is closing"));
}

void GroupCommitWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) {
    thread_.join();
    if (commits_.load() > 0) {
      const double commits = static_cast<double>(commits_.load());
      spdlog::info(
          "spool: {} writes in {} LMDB commits and {} journal appends; apply {:.1f} ms in all, "
          "mean LMDB commit (write + fsync) {:.3f} ms, mean journal append (write + fdatasync) "
          "{:.3f} ms",
          requests_.load(), commits_.load(), journaled_.load(),
          static_cast<double>(apply_ns_.load()) / 1e6,
          static_cast<double>(commit_ns_.load()) / commits / 1e6,
          journaled_.load() > 0
              ? static_cast<double>(journal_ns_.load()) / static_cast<double>(journaled_.load()) / 1e6
              : 0.0);
    }
  }
}

void GroupCommitWriter::run() {
  for (;;) {
    std::deque<Request> batch;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return stopping_ || !pending_.empty(); };
      // The journaled records' deadline, pushed back while LMDB commits fail.
      const auto deadline = std::max(carried_since_ + journaling_.max_delay, retry_after_);
      if (carried_.empty()) {
        cv_.wait(lock, ready);
      } else {
        cv_.wait_until(lock, deadline, ready);
      }
      while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      stopping = stopping_ && pending_.empty();
    }
    if (batch.empty() && carried_.empty()) {
      if (stopping) return;  // everything queued was applied and committed
      continue;
    }
    if (batch.empty() && !stopping &&
        std::chrono::steady_clock::now() < std::max(carried_since_ + journaling_.max_delay, retry_after_)) {
      continue;  // woken early: not due yet
    }
    if (fatal_.load()) {
      // LMDB cannot be trusted: touch nothing, fail everything at once. The
      // journaled records stay in the journal for the next start.
      for (Request& r : batch) r.done(Status::io_error("spool unusable after a fatal LMDB error"));
      if (stopping) {
        open_.reset();
        return;
      }
      if (batch.empty()) {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      }
      continue;
    }
    busy_since_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count());
    // An empty batch here is the deadline of the journaled requests, or the stop.
    const bool committed = commit_batch(batch, batch.empty() || stopping);
    if (committed && after_batch_) after_batch_();
    busy_since_ns_.store(0);
    if (stopping && !carried_.empty()) {
      // The last commit failed: the journal keeps the records, and the next open
      // applies them.
      spdlog::error("spool: {} journaled messages are not in LMDB yet at stop; the next start "
                    "recovers them from the journal",
                    carried_.size());
      open_.reset();
      return;
    }
  }
}

Status GroupCommitWriter::open_transaction(bool& map_full) {
  map_full = false;
  if (open_) return Status::ok();
  const int rc = WriteTxn::begin(env_, nullptr, open_);
  Status s = lmdb_status(rc, "mdb_txn_begin");
  if (!s.is_ok()) {
    last_rc_ = rc;
    return s;
  }
  if (carried_.empty()) return s;
  // The transaction that held the journaled records was aborted: apply them again.
  for (const JournalRecord& record : carried_) {
    s = journaling_.replay(*open_, record);
    if (!s.is_ok()) break;
  }
  if (!s.is_ok()) {
    map_full = open_->map_full();
    open_.reset();
    return s;
  }
  carried_hooks_ = std::exchange(open_->after_commit_hooks(), {});
  return s;
}

bool GroupCommitWriter::can_journal(const std::vector<std::optional<JournalRecord>>& records,
                                    const std::vector<Status>& results) const {
  // While LMDB cannot commit (disk full), new puts must not be acknowledged from
  // the journal alone: they go through the commit, and get its error (452).
  if (journaling_.journal == nullptr || lmdb_failing_) return false;
  uint64_t bytes = 0;
  size_t count = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!results[i].is_ok()) continue;  // applied nothing: nothing to journal
    if (!records[i] || records[i]->payload_size() > journaling_.max_record) return false;
    bytes += records[i]->payload_size();
    ++count;
  }
  if (count == 0 || carried_bytes_ + bytes > journaling_.max_bytes) return false;
  if (!carried_.empty() &&
      std::chrono::steady_clock::now() - carried_since_ >= journaling_.max_delay) {
    return false;
  }
  return journaling_.journal->fits(bytes, count);
}

bool GroupCommitWriter::commit_batch(std::deque<Request>& batch, bool force_commit) {
  std::vector<Status> results(batch.size());
  std::vector<std::vector<std::function<void()>>> hooks(batch.size());
  std::vector<std::optional<JournalRecord>> records(batch.size());
  Status batch_status;
  bool journaled = false, committed = false;
  for (int attempt = 0;; ++attempt) {
    const auto apply_start = std::chrono::steady_clock::now();
    bool map_full = false;
    batch_status = open_transaction(map_full);
    if (!batch_status.is_ok() && !map_full) break;
    for (size_t i = 0; i < batch.size() && !map_full; ++i) {
      hooks[i].clear();
      records[i].reset();
      // The request's nested transaction: aborted when it goes out of scope, unless
      // committed into the batch.
      std::optional<WriteTxn> child;
      results[i] = lmdb_status(WriteTxn::begin(env_, &*open_, child), "mdb_txn_begin (nested)");
      if (!results[i].is_ok()) continue;
      WriteTxn& txn = *child;
      try {
        results[i] = batch[i].apply(txn);
      } catch (const std::exception& e) {
        results[i] = Status::io_error(std::string("spool write failed: ") + e.what());
      }
      if (txn.map_full()) {
        map_full = true;
      } else if (results[i].is_ok()) {
        results[i] = lmdb_status(txn.commit(), "mdb_txn_commit (nested)");
        if (results[i].is_ok()) {
          hooks[i] = std::move(txn.after_commit_hooks());
          records[i] = std::move(txn.journal_record());
        }
      }
    }
    if (!map_full) {
      const auto commit_start = std::chrono::steady_clock::now();
      apply_ns_.fetch_add(elapsed_ns(apply_start, commit_start));
      if (!force_commit && can_journal(records, results)) {
        std::vector<const JournalRecord*> appended;
        for (size_t i = 0; i < batch.size(); ++i) {
          if (results[i].is_ok()) appended.push_back(&*records[i]);
        }
        const auto append_start = std::chrono::steady_clock::now();
        Status s = journaling_.journal->append(appended);
        journal_ns_.fetch_add(elapsed_ns(append_start, std::chrono::steady_clock::now()));
        if (s.is_ok()) {
          if (carried_.empty()) carried_since_ = std::chrono::steady_clock::now();
          for (size_t i = 0; i < batch.size(); ++i) {
            if (!results[i].is_ok()) continue;
            carried_bytes_ += records[i]->payload_size();
            carried_.push_back(std::move(*records[i]));
            for (auto& hook : hooks[i]) carried_hooks_.push_back(std::move(hook));
            hooks[i].clear();
          }
          journaled_.fetch_add(1);
          journaled = true;
          break;
        }
        // The LMDB commit below makes the batch durable instead.
        spdlog::warn("spool: journal append failed ({}); committing to LMDB instead", s.to_string());
      }
      // The batch's LMDB commit, with everything journaled before it: after it
      // returns, every request in it is durable and visible.
      if (journaling_.journal != nullptr && journaling_.journal->last_seq() != recorded_seq_) {
        Status s = journaling_.mark_applied(*open_, journaling_.journal->last_seq());
        if (!s.is_ok()) {
          map_full = open_->map_full();
          if (!map_full) {
            open_.reset();
            batch_status = s;
            break;
          }
        }
      }
      if (!map_full) {
        const int rc = commit_open_transaction();
        commit_ns_.fetch_add(elapsed_ns(commit_start, std::chrono::steady_clock::now()));
        if (rc != MDB_MAP_FULL) {
          last_rc_ = rc;
          batch_status = lmdb_status(rc, "mdb_txn_commit");
          committed = batch_status.is_ok();
          break;
        }
      }
    }
    open_.reset();  // no transaction may be open while the map grows
    if (attempt >= kMaxMapGrowths) {
      batch_status = Status::no_space("LMDB map full and cannot grow");
      break;
    }
    batch_status = grow_map_();
    if (!batch_status.is_ok()) break;
  }
  if (!journaled) lmdb_failing_ = !committed;
  // Whatever made it fail (a commit error, a map that cannot grow, a transaction
  // that cannot begin), the next try waits: the writer never spins.
  if (committed) {
    note_commit_success();
  } else if (!journaled) {
    note_commit_failure(last_rc_, batch_status);
  }
  last_rc_ = MDB_SUCCESS;
  if (committed) {
    commits_.fetch_add(1);
    if (journaling_.journal != nullptr) {
      recorded_seq_ = journaling_.journal->last_seq();
      journaling_.journal->restart(recorded_seq_);
    }
    for (auto& hook : carried_hooks_) hook();
    carried_.clear();
    carried_hooks_.clear();
    carried_bytes_ = 0;
  }
  requests_.fetch_add(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Status s = batch_status.is_ok() ? results[i] : batch_status;
    if (s.is_ok()) {
      for (auto& hook : hooks[i]) hook();
    }
    batch[i].done(std::move(s));
  }
  return committed;
}

}  // namespace holdd
