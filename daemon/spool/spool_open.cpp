// Spool::open: opens LMDB and its tables, replays the intake journal's records that
// the last LMDB commit does not hold, folds mailbox keys, rebuilds the in-memory
// totals and starts the group-commit writer.
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <random>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "holdd/base/printable.h"
#include "holdd/spool/keys.h"
#include "holdd/spool/mailbox_key_migration.h"
#include "queue_scan.h"
#include "spool_impl.h"

namespace holdd {

namespace {

// The largest queue sequence that any of `records` uses (0 if none).
uint64_t last_seq_of(const std::vector<RecoveredRecord>& records) {
  uint64_t last = 0;
  for (const RecoveredRecord& r : records) {
    StoredPut p;
    if (!decode_put(r.head, p)) continue;
    for (const QueueEntry& e : p.entries) last = std::max(last, e.seq);
  }
  return last;
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const SpoolOptions& options, net::any_io_executor io) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::io_error("cannot create spool directory " + options.path + ": " + ec.message());

  auto impl = std::make_unique<Impl>(options, std::move(io));
  if (Status s = impl->open_environment(); !s.is_ok()) return s;
  uint64_t epoch = 0, applied = 0;
  if (Status s = impl->open_tables(epoch, applied); !s.is_ok()) return s;

  // The journal is always opened and recovered: options.journal = false
  // (benchmarks) only stops new records.
  auto journal = IntakeJournal::open(options.path + "/journal", epoch);
  if (!journal.ok()) return journal.status();
  impl->journal = std::move(*journal);
  if (options.journal_sync_fails) impl->journal->inject_sync_failure(options.journal_sync_fails);
  if (Status s = impl->recover_journal(applied); !s.is_ok()) {
    return Status::io_error("cannot recover the spool journal in " + options.path + ": " + s.message());
  }
  // After recovery: the journal's records carry the keys of the holdd that wrote them.
  auto keys_folded = migrate_mailbox_keys(
      impl->env, {impl->mailbox_dbi, impl->queue_dbi, impl->meta_dbi, impl->info_dbi},
      options.fold_local_part_case, [raw = impl.get()] { return raw->grow_map(); });
  if (!keys_folded) return keys_folded.status();

  impl->load_last_id();
  impl->rebuild_totals();
  impl->disk.refresh();
  impl->start_writer(options.journal);
  return std::unique_ptr<Spool>(new Spool(std::move(impl)));
}

Status Spool::Impl::open_environment() {
  Status s = lmdb_status(mdb_env_create(&env), "mdb_env_create");
  if (!s.is_ok()) return s;
  mdb_env_set_maxdbs(env, 8);
  // Start from the larger of the configured size and the file already there.
  uint64_t size = options.initial_map_size;
  std::string data_file = options.path + "/data.mdb";
  if (struct stat st {}; ::stat(data_file.c_str(), &st) == 0) {
    size = std::max<uint64_t>(size, static_cast<uint64_t>(st.st_size));
  }
  map_size = size;
  mdb_env_set_mapsize(env, size);
  // Durable by default: no MDB_NOSYNC / MDB_NOMETASYNC on the acknowledged path.
  int rc = mdb_env_open(env, options.path.c_str(), MDB_NOTLS, 0600);
  if (rc != MDB_SUCCESS) {
    return Status::io_error("cannot open spool " + options.path + ": " + mdb_strerror(rc));
  }
  MDB_envinfo info{};
  mdb_env_info(env, &info);
  map_size = info.me_mapsize;
  return Status::ok();
}

Status Spool::Impl::open_tables(uint64_t& epoch, uint64_t& applied) {
  std::optional<WriteTxn> setup;
  if (Status s = lmdb_status(WriteTxn::begin(env, nullptr, setup), "mdb_txn_begin"); !s.is_ok()) {
    return s;
  }
  const std::pair<const char*, MDB_dbi*> tables[] = {{"meta", &meta_dbi},
                                                     {"body", &body_dbi},
                                                     {"queue", &queue_dbi},
                                                     {"mailbox", &mailbox_dbi},
                                                     {"info", &info_dbi}};
  for (const auto& [name, dbi] : tables) {
    int rc = mdb_dbi_open(setup->get(), name, MDB_CREATE, dbi);
    if (rc != MDB_SUCCESS) {
      return Status::io_error(std::string("cannot open spool table ") + name + ": " + mdb_strerror(rc));
    }
  }
  if (auto v = setup->read(info_dbi, kJournalEpochKey)) epoch = keys::read_u64_be(*v);
  if (auto v = setup->read(info_dbi, kJournalAppliedKey)) applied = keys::read_u64_be(*v);
  if (epoch == 0) {
    std::random_device random;
    epoch = (static_cast<uint64_t>(random()) << 32) | random() | 1;
    if (Status s = setup->put(info_dbi, kJournalEpochKey, keys::u64_be(epoch)); !s.is_ok()) return s;
  }
  return lmdb_status(setup->commit(), "mdb_txn_commit");
}

// Applies a journaled put again; one already stored is left as it is. A queue
// key that is already taken (by another message: never by design, but a journal
// and a data file that disagree must not cost a message) is never overwritten:
// the replayed entry gets the sequence last_seq + 1 instead, where last_seq is
// at least every sequence the spool and the records being replayed use.
Status Spool::Impl::replay_put(WriteTxn& txn, std::string_view head, std::string_view content,
                               uint64_t& last_seq) {
  StoredPut p;
  if (!decode_put(head, p)) return Status::io_error("unreadable spool journal record");
  if (txn.read(meta_dbi, p.meta.id)) return Status::ok();
  if (auto v = txn.read(info_dbi, kSeqKey)) last_seq = std::max(last_seq, keys::read_u64_be(*v));
  for (const QueueEntry& e : p.entries) last_seq = std::max(last_seq, e.seq);
  for (QueueEntry& e : p.entries) {
    if (!txn.read(queue_dbi, keys::queue_key(e.mailbox, e.seq))) continue;
    spdlog::error("spool: journal record of {} names queue entry {} of {}, which another "
                  "message holds: keeping both, the journaled one as entry {}",
                  p.meta.id, e.seq, printable(e.mailbox), last_seq + 1);
    e.seq = ++last_seq;
  }
  return apply_put(txn, p, content, nullptr);
}

Status Spool::Impl::recover_journal(uint64_t applied) {
  std::vector<RecoveredRecord> records = journal->recover(applied);
  if (records.empty()) return Status::ok();
  for (int attempt = 0;; ++attempt) {
    std::optional<WriteTxn> txn;
    Status s = lmdb_status(WriteTxn::begin(env, nullptr, txn), "mdb_txn_begin");
    if (!s.is_ok()) return s;
    uint64_t last_seq = last_seq_of(records);
    for (const RecoveredRecord& r : records) {
      if (s = replay_put(*txn, r.head, r.bulk, last_seq); !s.is_ok()) break;
    }
    if (s.is_ok()) s = txn->put(info_dbi, kJournalAppliedKey, keys::u64_be(records.back().seq));
    if (s.is_ok()) {
      int rc = txn->commit();
      if (rc == MDB_SUCCESS) break;
      if (rc != MDB_MAP_FULL) return lmdb_status(rc, "mdb_txn_commit (journal recovery)");
    } else if (!txn->map_full()) {
      return s;
    }
    txn.reset();  // aborted unless its commit ran: the map cannot grow under it
    if (attempt >= 8) return Status::no_space("LMDB map full during journal recovery");
    if (s = grow_map(); !s.is_ok()) return s;
  }
  spdlog::info("spool: {} messages recovered from the journal (records {} to {})", records.size(),
               records.front().seq, records.back().seq);
  journal->restart(records.back().seq);
  return Status::ok();
}

// Queue IDs grow: start past the largest one stored (fixed-width hex sorts numerically).
void Spool::Impl::load_last_id() {
  ReadTxn read(*this);
  MDB_cursor* cursor = nullptr;
  if (read.get() != nullptr && mdb_cursor_open(read.get(), meta_dbi, &cursor) == MDB_SUCCESS) {
    MDB_val k, v;
    if (mdb_cursor_get(cursor, &k, &v, MDB_LAST) == MDB_SUCCESS) {
      last_id = std::strtoull(std::string(to_view(k)).c_str(), nullptr, 16);
    }
    mdb_cursor_close(cursor);
  }
}

void Spool::Impl::rebuild_totals() {
  ReadTxn txn(*this);
  if (txn.get() == nullptr) return;
  counters.clear();
  for_each_entry(txn.get(), queue_dbi, "", [&](QueueEntry e) {
    counters.add(e);
    return true;
  });
}

void Spool::Impl::start_writer(bool journaling) {
  // Preallocating data.mdb pays when every put waits for an LMDB commit. With the
  // journal, LMDB commits are few and off the 250's path, while a top-up (MiBs of
  // zeros and an fdatasync on the writer thread) stalls every session for 10-20 ms:
  // measured p99 intake latency 15.8 ms with it, 4.4 ms without (docs/performance.md).
  // options.preallocate forces it on or off, for benchmarks.
  preallocation = std::make_unique<SpoolPreallocation>(env, options.preallocate.value_or(!journaling));
  GroupCommitWriter::Journaling journal_use;
  if (journaling) {
    journal_use.journal = journal.get();
    journal_use.replay = [this](WriteTxn& w, const JournalRecord& r) {
      uint64_t last_seq = 0;
      return replay_put(w, r.head, r.bulk ? std::string_view(*r.bulk) : std::string_view(), last_seq);
    };
    journal_use.max_delay = std::chrono::microseconds(std::max<int64_t>(0, options.journal_commit_delay_us));
    journal_use.mark_applied = [this](WriteTxn& w, uint64_t seq) {
      return w.put(info_dbi, kJournalAppliedKey, keys::u64_be(seq));
    };
  }
  auto on_fatal = [executor = io, shared = fatal](const Status& status) {
    net::post(executor, [shared, status] {
      std::function<void(const Status&)> handler;
      {
        std::lock_guard lock(shared->mu);
        handler = shared->handler;
      }
      if (handler) handler(status);
    });
  };
  writer = std::make_unique<GroupCommitWriter>(
      env, [this] { return grow_map(); }, [this] { preallocation->top_up(); }, std::move(journal_use),
      std::move(on_fatal), options.max_batch);
  if (options.lmdb_commit_error) writer->inject_commit_error(options.lmdb_commit_error);
}

}  // namespace holdd
