#include "holdd/spool/group_commit.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <vector>

namespace holdd {

namespace {
// Bounds one batch, so a burst cannot hold every session behind one huge fsync.
constexpr size_t kMaxBatch = 512;
constexpr int kMaxMapGrowths = 8;  // per batch

// HOLDD_SPOOL_MAX_BATCH=1 turns group commit off (one fsync per request): only for
// benchmarks that show what batching buys (bench/intake.sh).
size_t max_batch_from_env() {
  const char* text = std::getenv("HOLDD_SPOOL_MAX_BATCH");
  if (text == nullptr) return kMaxBatch;
  long n = std::strtol(text, nullptr, 10);
  return n >= 1 && n <= static_cast<long>(kMaxBatch) ? static_cast<size_t>(n) : kMaxBatch;
}
uint64_t elapsed_ns(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}
}  // namespace

GroupCommitWriter::GroupCommitWriter(MDB_env* env, std::function<Status()> grow_map,
                                     std::function<void()> after_batch)
    : env_(env), grow_map_(std::move(grow_map)), after_batch_(std::move(after_batch)),
      max_batch_(max_batch_from_env()),
      thread_([this] { run(); }) {}

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
          "spool: {} writes in {} commits ({:.1f} per fsync), mean apply {:.3f} ms, mean commit "
          "(write + fsync) {:.3f} ms",
          requests_.load(), commits_.load(), static_cast<double>(requests_.load()) / commits,
          static_cast<double>(apply_ns_.load()) / commits / 1e6,
          static_cast<double>(commit_ns_.load()) / commits / 1e6);
    }
  }
}

void GroupCommitWriter::run() {
  for (;;) {
    std::deque<Request> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything queued was applied
      while (!pending_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    commit_batch(batch);
    if (after_batch_) after_batch_();
  }
}

void GroupCommitWriter::commit_batch(std::deque<Request>& batch) {
  std::vector<Status> results(batch.size());
  std::vector<std::vector<std::function<void()>>> hooks(batch.size());
  Status batch_status;
  for (int attempt = 0;; ++attempt) {
    const auto apply_start = std::chrono::steady_clock::now();
    MDB_txn* parent = nullptr;
    batch_status = lmdb_status(mdb_txn_begin(env_, nullptr, 0, &parent), "mdb_txn_begin");
    if (!batch_status.is_ok()) break;
    bool map_full = false;
    for (size_t i = 0; i < batch.size() && !map_full; ++i) {
      hooks[i].clear();
      MDB_txn* child = nullptr;
      results[i] = lmdb_status(mdb_txn_begin(env_, parent, 0, &child), "mdb_txn_begin (nested)");
      if (!results[i].is_ok()) continue;
      WriteTxn txn(child);
      try {
        results[i] = batch[i].apply(txn);
      } catch (const std::exception& e) {
        results[i] = Status::io_error(std::string("spool write failed: ") + e.what());
      }
      if (txn.map_full()) {
        map_full = true;
        mdb_txn_abort(child);
      } else if (results[i].is_ok()) {
        results[i] = lmdb_status(mdb_txn_commit(child), "mdb_txn_commit (nested)");
        if (results[i].is_ok()) hooks[i] = std::move(txn.after_commit_hooks());
      } else {
        mdb_txn_abort(child);
      }
    }
    if (!map_full) {
      // The one fsync of the batch: after it returns, every request in it is durable.
      const auto commit_start = std::chrono::steady_clock::now();
      apply_ns_.fetch_add(elapsed_ns(apply_start, commit_start));
      int rc = mdb_txn_commit(parent);
      commit_ns_.fetch_add(elapsed_ns(commit_start, std::chrono::steady_clock::now()));
      if (rc != MDB_MAP_FULL) {
        batch_status = lmdb_status(rc, "mdb_txn_commit");
        break;
      }
    } else {
      mdb_txn_abort(parent);
    }
    if (attempt >= kMaxMapGrowths) {
      batch_status = Status::no_space("LMDB map full and cannot grow");
      break;
    }
    batch_status = grow_map_();
    if (!batch_status.is_ok()) break;
  }
  commits_.fetch_add(1);
  requests_.fetch_add(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Status s = batch_status.is_ok() ? results[i] : batch_status;
    if (s.is_ok()) {
      for (auto& hook : hooks[i]) hook();
    }
    batch[i].done(std::move(s));
  }
}

}  // namespace holdd
