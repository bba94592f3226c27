#pragma once
// A Spool is the durable store behind every "250 queued": message bodies (one copy
// however many recipients), one queue entry per (mailbox, arrival seq), mailbox
// records with their state and history, in one LMDB environment.
//
// Writes from every session and from the relay go to one writer thread, which
// applies all requests waiting at that moment in one write transaction and one
// fsync (group commit); each request runs in a nested transaction, so one failing
// request does not spoil its batch. A write completes on the io executor given to
// open(), after the fsync: the caller may then answer 250 or forget the message.
// On failure nothing of that request is visible, and the Status is never permanent
// (kNoSpace when the map cannot grow or the disk is below min_free_disk).
//
// A message put is durable once its record is in the intake journal
// (IntakeJournal): its LMDB commit follows within milliseconds, with later writes.
// Reads use their own read transactions (MDB_NOTLS) and may run on any thread;
// they see the last LMDB commit: co_await sync() first to see every completed write.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/base/status.h"
#include "holdd/spool/queue_counters.h"
#include "holdd/spool/records.h"

namespace holdd {

namespace net = boost::asio;

struct SpoolOptions {
  std::string path;                        // directory; created if missing
  uint64_t min_free_disk = 0;              // bytes; below this put() fails with kNoSpace
  MailboxState initial_state = MailboxState::kOld;  // of a mailbox without a record
  uint64_t initial_map_size = 1ull << 30;  // grows (doubling) when full
  uint64_t max_map_size = 1ull << 40;
  // How long a journaled put may wait for its LMDB commit (and so for reads and
  // the dispatcher to see it); sync() and any other write commit sooner.
  int64_t journal_commit_delay_us = 10'000;
  // [directory] local_part_case = "insensitive": keys stored with capitals in the
  // local part (older spools, or "exact" mode) are folded at open, once
  // (mailbox_key_migration.h).
  bool fold_local_part_case = true;
  // Benchmarks only, to measure what each part of intake buys (the daemon sets them
  // from HOLDD_SPOOL_* environment variables, app/daemon.cpp; docs/performance.md):
  // - journal = false: no new intake journal records, every put waits for its LMDB
  //   commit. The journal is still opened and recovered at open.
  // - preallocate: keep zeroed space ahead of LMDB's last page in the data file
  //   (SpoolPreallocation); unset, only when not journaling (it stalls the writer).
  // - max_batch: requests per group commit, 1 to 512 (other values: 512); 1 is one
  //   fsync per request.
  bool journal = true;
  std::optional<bool> preallocate;
  size_t max_batch = 512;
  // Tests only (fault injection): called at each journal append; true makes it
  // fail after writing, as a failed fdatasync would.
  std::function<bool()> journal_sync_fails;
  // Tests only: called at each LMDB commit; a non-zero LMDB code (ENOSPC,
  // MDB_PANIC) is reported instead of committing.
  std::function<int()> lmdb_commit_error;
};

struct IncomingMessage {
  MessageMeta meta;  // the session sets id, sender, flags, client; put() sets arrival, size, refs
  std::vector<QueuedRecipient> recipients;  // one per mailbox, no duplicates
  std::string content;  // the whole message with holdd's headers prepended; CRLF lines
};

struct PutReceipt {
  int64_t arrival_us = 0;
  std::vector<MailboxState> states;  // state of each recipient's mailbox at commit
};

// An entry an upstream accepted (Spool::delivered).
struct AcceptedDelivery {
  QueueEntry entry;
  UpstreamKind upstream = UpstreamKind::kOld;
  std::string reply;
};

struct StateTransition {
  std::string mailbox;
  MailboxState from = MailboxState::kOld;
  MailboxState to = MailboxState::kOld;
  bool changed() const { return from != to; }
};

struct SpoolStats {
  uint64_t map_size = 0;
  uint64_t map_used = 0;   // bytes of the map in use (pages * page size)
  uint64_t messages = 0;   // distinct stored messages
  uint64_t disk_free = 0;  // bytes free on the spool's file system
};

class Spool {
 public:
  static Result<std::unique_ptr<Spool>> open(const SpoolOptions& options,
                                             net::any_io_executor io);
  ~Spool();  // finishes queued writes, stops the writer, closes the environment
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // A fresh queue ID (thread-safe): 14 upper-case hex digits, increasing, never
  // one already in this spool.
  std::string new_id();
  // True while free disk is below min_free_disk (checked at most once a second).
  bool low_on_disk();

  // ---- writes (group commit; each completes after fsync) ----
  // Stores the message once and queues it for each recipient's mailbox, creating
  // mailbox records (initial_state) for mailboxes seen for the first time.
  net::awaitable<Result<PutReceipt>> put(IncomingMessage msg);
  // Sets the state of every mailbox in one transaction (idempotent: an unchanged
  // mailbox gets no history entry). Entering old/migrated from held starts the
  // deliverable clock.
  net::awaitable<Result<std::vector<StateTransition>>> set_state(
      std::vector<std::string> mailboxes, MailboxState to, std::string by);
  // Adds a line of text to the mailbox's history (a StateChange with from == to
  // and `note`), for the operator: holdctl note, migrate's copy attempts.
  net::awaitable<Status> add_note(std::string mailbox, std::string note, std::string by);
  // The upstream accepted `entry`: remove it (and the message once no entry
  // refers to it), record the delivery on the mailbox and the upstream, in one step.
  net::awaitable<Status> delivered(QueueEntry entry, UpstreamKind upstream, std::string reply);
  // The same for several entries, in order, in one write: all are removed or none
  // (the relay's removals of one mailbox, PendingRemovals).
  net::awaitable<Status> delivered(std::vector<AcceptedDelivery> deliveries);
  // A 4xx or a connection failure: count the attempt, keep the entry in place.
  net::awaitable<Status> deferred(QueueEntry entry, std::string error, int64_t next_attempt_us);
  // A 5xx: keep the entry, mark it parked (skipped until `retry`).
  net::awaitable<Status> parked(QueueEntry entry, std::string reply);
  // `holdctl retry`: unpark and clear the backoff of every entry of `mailbox` (or
  // of all mailboxes). Returns how many entries were parked.
  net::awaitable<Result<uint64_t>> requeue(std::optional<std::string> mailbox);
  // `holdctl drop`: delete every queue entry of these message IDs; returns them.
  net::awaitable<Result<std::vector<QueueEntry>>> drop(std::vector<std::string> ids);

  // Commits every write completed so far to LMDB, so that reads see them (the
  // control socket calls it before answering). With a timeout, gives up waiting
  // after it (kTimeout: a stalled disk must not stall `holdctl check`); the commit
  // still happens when the writer gets to it.
  net::awaitable<Status> sync();
  net::awaitable<Status> sync(std::chrono::milliseconds timeout);

  // Called on the io executor after each LMDB commit that queued mail, with the
  // mailboxes concerned (the dispatcher wakes up on it).
  void on_queued(std::function<void(const std::vector<std::string>&)> observer);
  // Called once on the io executor when LMDB reports an error after which it
  // cannot be trusted (MDB_PANIC, a corrupt page): every write fails from then on,
  // and the daemon should exit non-zero so that systemd restarts it and the
  // journal is replayed.
  void on_fatal(std::function<void(const Status&)> handler);
  // False after such an error, or while the writer has been stuck in one batch
  // for longer than `stall` (the systemd watchdog stops pinging then).
  bool healthy(std::chrono::nanoseconds stall) const;

  // ---- reads (snapshot of the last commit; any thread) ----
  MailboxRecord mailbox(const std::string& key) const;  // a default record if none yet
  bool has_mailbox(const std::string& key) const;       // a record exists (mail or a state change)
  std::vector<MailboxRecord> mailbox_records() const;   // every mailbox with a record
  // The first entry not parked whose seq is not in `skip` (the relay's accepted
  // entries whose removal is not committed yet).
  std::optional<QueueEntry> head(const std::string& mailbox,
                                 const std::set<uint64_t>& skip = {}) const;
  std::vector<QueueEntry> queue(const std::string& mailbox) const;   // arrival order
  std::vector<QueueEntry> entries_of(const std::string& id) const;   // one message's entries
  Result<MessageMeta> meta(const std::string& id) const;
  Result<std::string> content(const std::string& id) const;
  // In memory, kept up to date at each commit: O(1) / O(mailboxes), no LMDB read.
  QueueTotals totals(const std::string& mailbox) const;
  std::map<std::string, QueueTotals> all_totals() const;  // mailboxes with entries
  // Unparked entries of `mailbox` that arrived before `before_us` (the warn_after
  // check), O(log n).
  Backlog unparked_before(const std::string& mailbox, int64_t before_us) const;
  int64_t last_relay_us(UpstreamKind upstream) const;     // 0: never
  // Mail the old server forwarded ([upstream.old] forwarders): in all, and when the
  // last of it arrived (unix micros; 0: never).
  uint64_t forwarded_by_old() const;
  int64_t last_forwarded_by_old_us() const;
  SpoolStats stats() const;
  MailboxState initial_state() const;

  struct Impl;

 private:
  explicit Spool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace holdd
