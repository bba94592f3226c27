#pragma once
// Spool::Impl: the state behind a Spool (the LMDB environment and its tables, the
// journal, the group-commit writer, the in-memory views) and the steps more than
// one of the spool's files use. Private to daemon/spool: spool.cpp (lifetime,
// IDs, observers), spool_open.cpp (open and journal recovery), spool_write.cpp (the
// writes) and spool_read.cpp (the reads) each define their part of it.
#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/spool/free_disk_check.h"
#include "holdd/spool/group_commit.h"
#include "holdd/spool/intake_journal.h"
#include "holdd/spool/preallocation.h"
#include "holdd/spool/queue_counters.h"
#include "holdd/spool/records.h"
#include "holdd/spool/spool.h"
#include "holdd/spool/write_txn.h"

namespace holdd {

// Keys of the info table (besides mailbox_key_migration.h's marker).
inline constexpr char kSeqKey[] = "seq";  // the last queue sequence used
// The journal's epoch ties its records to this spool (a journal left beside a new
// data file is ignored); "applied" is the last journal record LMDB holds.
inline constexpr char kJournalEpochKey[] = "journal.epoch";
inline constexpr char kJournalAppliedKey[] = "journal.applied";
// Mail the old server forwarded ([upstream.old] forwarders): how many, and when the
// last arrived (unix micros), both big-endian u64 in the info table.
inline constexpr std::string_view kForwardedOldTotalKey = "forwarded.old.total";
inline constexpr std::string_view kForwardedOldLastKey = "forwarded.old.last";

inline std::string last_relay_key(UpstreamKind u) {
  return u == UpstreamKind::kOld ? "last_relay.old" : "last_relay.new";
}

struct Spool::Impl {
  Impl(const SpoolOptions& o, net::any_io_executor executor)
      : options(o), io(std::move(executor)), disk(o.path, o.min_free_disk) {}
  ~Impl();  // stops the writer, then closes the environment (spool.cpp)

  SpoolOptions options;
  net::any_io_executor io;
  MDB_env* env = nullptr;
  MDB_dbi meta_dbi = 0, body_dbi = 0, queue_dbi = 0, mailbox_dbi = 0, info_dbi = 0;
  uint64_t map_size = 0;
  // Readers hold it shared for the life of a read txn; growing the map holds it
  // exclusively (mdb_env_set_mapsize needs no transaction open in the process).
  mutable std::shared_mutex resize_mu;
  std::unique_ptr<SpoolPreallocation> preallocation;
  std::unique_ptr<IntakeJournal> journal;
  std::unique_ptr<GroupCommitWriter> writer;
  std::atomic<uint64_t> last_id{0};

  QueueCounters counters;  // what is queued, per mailbox, in memory
  FreeDiskCheck disk;

  // The on_queued observers. Shared with the handlers that commits post to the io
  // executor: such a handler may run after the Spool is gone (a commit at close),
  // and then finds the list emptied by ~Impl.
  struct Observers {
    std::mutex mu;
    std::vector<std::function<void(const std::vector<std::string>&)>> list;
  };
  std::shared_ptr<Observers> observers = std::make_shared<Observers>();
  // The on_fatal handler, shared with the handler the writer posts (as above).
  struct FatalHandler {
    std::mutex mu;
    std::function<void(const Status&)> handler;
  };
  std::shared_ptr<FatalHandler> fatal = std::make_shared<FatalHandler>();

  // A big-endian u64 of the info table (counters, times), 0 when absent.
  uint64_t info_u64(std::string_view key) const;

  // A read-only snapshot. REQUIRES: short-lived (no co_await while held).
  class ReadTxn {
   public:
    explicit ReadTxn(const Impl& impl) : lock_(impl.resize_mu) {
      if (mdb_txn_begin(impl.env, nullptr, MDB_RDONLY, &txn_) != MDB_SUCCESS) txn_ = nullptr;
    }
    ~ReadTxn() {
      if (txn_ != nullptr) mdb_txn_abort(txn_);
    }
    MDB_txn* get() const { return txn_; }
    std::optional<std::string_view> read(MDB_dbi dbi, std::string_view key) const {
      if (txn_ == nullptr) return std::nullopt;
      MDB_val k = to_val(key), v;
      if (mdb_get(txn_, dbi, &k, &v) != MDB_SUCCESS) return std::nullopt;
      return to_view(v);
    }

   private:
    std::shared_lock<std::shared_mutex> lock_;
    MDB_txn* txn_ = nullptr;
  };

  // Doubles the map, up to max_map_size (spool.cpp). REQUIRES: no transaction open
  // in this process that is not a reader's (readers wait on resize_mu).
  Status grow_map();

  MailboxRecord default_record(const std::string& key) const {
    MailboxRecord r;
    r.mailbox = key;
    r.state = options.initial_state;
    return r;
  }

  MailboxRecord read_record(std::optional<std::string_view> bytes, const std::string& key) const {
    MailboxRecord r = default_record(key);
    if (bytes) decode(*bytes, r);
    r.mailbox = key;
    return r;
  }

  // ---- spool_open.cpp ----
  // Opens the LMDB environment and its tables; `epoch` and `applied` get the
  // journal's position as the last LMDB commit recorded it.
  Status open_environment();
  Status open_tables(uint64_t& epoch, uint64_t& applied);
  // Applies the journal's records that the last LMDB commit does not hold.
  Status recover_journal(uint64_t applied);
  // Applies a journaled put again (at recovery, and when the group commit lost the
  // transaction holding it).
  Status replay_put(WriteTxn& txn, std::string_view head, std::string_view content,
                    uint64_t& last_seq);
  void load_last_id();
  void rebuild_totals();
  // Starts the group-commit writer; `journaling` says whether puts may be journaled.
  void start_writer(bool journaling);

  // ---- spool_write.cpp ----
  // Submits `apply` to the group commit and completes on the caller's executor
  // once the batch holding it is durable.
  net::awaitable<Status> write(GroupCommitWriter::Apply apply);
  // Stores a message put, at intake and again from the journal.
  Status apply_put(WriteTxn& txn, const StoredPut& p, std::string_view content,
                   std::vector<MailboxState>* states);
  Status remove_entry(WriteTxn& txn, const QueueEntry& stored);
  std::optional<QueueEntry> current(WriteTxn& txn, const QueueEntry& entry);
  Status put_entry(WriteTxn& txn, const QueueEntry& e);
  Status update_record(WriteTxn& txn, const std::string& mailbox,
                       const std::function<void(MailboxRecord&)>& change);
};

}  // namespace holdd
