#include "holdd/spool/spool.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string_view>
#include <unordered_set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "holdd/base/printable.h"
#include "holdd/spool/group_commit.h"
#include "holdd/spool/intake_journal.h"
#include "holdd/spool/keys.h"
#include "holdd/spool/mailbox_key_migration.h"
#include "holdd/spool/preallocation.h"
#include "holdd/spool/queue_counters.h"
#include "holdd/spool/write_txn.h"

namespace holdd {

namespace {

constexpr size_t kMaxHistory = 200;  // state changes kept per mailbox
const char kSeqKey[] = "seq";
const char kJournalEpochKey[] = "journal.epoch";
const char kJournalAppliedKey[] = "journal.applied";

// A message put as the journal records it: the meta and queue entries exactly as
// applied (arrival time and sequence numbers included), so that applying it again
// gives the same state. The content travels beside it.
struct StoredPut {
  MessageMeta meta;
  std::vector<QueueEntry> entries;
};

// The journal's head of a put: a CBOR map whose values are the records' own
// encodings and the mailbox keys, all as byte strings (binary-safe, as records.cpp
// explains). Journals written before that format hold JSON text ('{'), still read.
std::string encode_put(const StoredPut& p) {
  using nlohmann::json;
  auto bytes = [](std::string_view s) {
    return json::binary(std::vector<std::uint8_t>(s.begin(), s.end()));
  };
  json entries = json::array();
  for (const QueueEntry& e : p.entries) {
    entries.push_back(json::array({bytes(e.mailbox), e.seq, bytes(encode(e))}));
  }
  std::string out;
  json::to_cbor(json{{"m", bytes(encode(p.meta))}, {"e", std::move(entries)}}, out);
  return out;
}

bool decode_put(std::string_view head, StoredPut& p) {
  using nlohmann::json;
  if (head.empty()) return false;
  json j = head.front() == '{' ? json::parse(head, nullptr, /*allow_exceptions=*/false)
                               : json::from_cbor(head, /*strict=*/true, /*allow_exceptions=*/false);
  auto text = [](const json& v, std::string& out) {
    if (v.is_binary()) {
      out.assign(v.get_binary().begin(), v.get_binary().end());
    } else if (v.is_string()) {
      out = v.get<std::string>();
    } else {
      return false;
    }
    return true;
  };
  if (!j.is_object() || !j.contains("m") || !j.contains("e") || !j["e"].is_array()) return false;
  std::string record;
  if (!text(j["m"], record) || !decode(record, p.meta)) return false;
  for (const json& item : j["e"]) {
    if (!item.is_array() || item.size() != 3 || !item[1].is_number_unsigned()) return false;
    QueueEntry e;
    if (!text(item[2], record) || !decode(record, e) || !text(item[0], e.mailbox)) return false;
    e.seq = item[1].get<uint64_t>();
    p.entries.push_back(std::move(e));
  }
  return true;
}

std::string last_relay_key(UpstreamKind u) {
  return u == UpstreamKind::kOld ? "last_relay.old" : "last_relay.new";
}

bool has_prefix(std::string_view s, std::string_view prefix) {
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

std::optional<QueueEntry> first_entry(MDB_txn* txn, MDB_dbi dbi, std::string_view mailbox) {
  std::optional<QueueEntry> first;
  for_each_entry(txn, dbi, keys::queue_prefix(mailbox), [&](QueueEntry e) {
    first = std::move(e);
    return false;
  });
  return first;
}

}  // namespace

struct Spool::Impl {
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

  std::atomic<int64_t> disk_checked_us{0};
  std::atomic<bool> disk_low{false};
  std::atomic<uint64_t> disk_free{0};

  ~Impl() {
    {
      std::lock_guard lock(observers->mu);
      observers->list.clear();
    }
    {
      std::lock_guard lock(fatal->mu);
      fatal->handler = nullptr;
    }
    if (writer) writer->stop();
    writer.reset();
    journal.reset();
    if (env != nullptr) mdb_env_close(env);
  }

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

  Status grow_map() {
    if (map_size >= options.max_map_size) return Status::no_space("LMDB map at its maximum size");
    uint64_t next = std::min(map_size * 2, options.max_map_size);
    std::unique_lock lock(resize_mu);
    int rc = mdb_env_set_mapsize(env, next);
    if (rc != MDB_SUCCESS) return lmdb_status(rc, "mdb_env_set_mapsize");
    spdlog::info("spool: LMDB map grown from {} to {} bytes", map_size, next);
    map_size = next;
    return Status::ok();
  }

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

  // Submits `apply` to the group commit and completes on the caller's executor
  // once the batch holding it is durable.
  net::awaitable<Status> write(GroupCommitWriter::Apply apply) {
    auto initiate = [this](auto handler, GroupCommitWriter::Apply fn) {
      auto shared = std::make_shared<decltype(handler)>(std::move(handler));
      auto ex = net::get_associated_executor(*shared, io);
      auto work = net::make_work_guard(ex);  // keeps run() going while the writer works
      writer->submit(std::move(fn), [shared, ex, work](Status s) mutable {
        net::post(ex, [shared, s = std::move(s)]() mutable { (*shared)(std::move(s)); });
        work.reset();
      });
    };
    co_return co_await net::async_initiate<const net::use_awaitable_t<>&, void(Status)>(
        initiate, net::use_awaitable, std::move(apply));
  }

  // Removes one entry inside `txn`, releasing the message once nothing refers to it.
  Status remove_entry(WriteTxn& txn, const QueueEntry& stored) {
    Status s = txn.erase(queue_dbi, keys::queue_key(stored.mailbox, stored.seq));
    if (!s.is_ok()) return s;
    if (auto bytes = txn.read(meta_dbi, stored.id)) {
      MessageMeta meta;
      decode(*bytes, meta);
      if (meta.refs <= 1) {
        if (s = txn.erase(meta_dbi, stored.id); !s.is_ok()) return s;
        if (s = txn.erase(body_dbi, stored.id); !s.is_ok()) return s;
      } else {
        --meta.refs;
        if (s = txn.put(meta_dbi, stored.id, encode(meta)); !s.is_ok()) return s;
      }
    }
    std::optional<QueueEntry> head = first_entry(txn.get(), queue_dbi, stored.mailbox);
    const int64_t oldest = head ? head->arrival_us : 0;
    txn.after_commit([this, stored, oldest] { counters.remove(stored, oldest); });
    return Status::ok();
  }

  // Reads the current version of `entry` (it may have been parked, retried or
  // dropped since the caller read it).
  std::optional<QueueEntry> current(WriteTxn& txn, const QueueEntry& entry) {
    auto bytes = txn.read(queue_dbi, keys::queue_key(entry.mailbox, entry.seq));
    if (!bytes) return std::nullopt;
    QueueEntry e;
    if (!decode(*bytes, e)) return std::nullopt;
    e.mailbox = entry.mailbox;
    e.seq = entry.seq;
    return e;
  }

  Status put_entry(WriteTxn& txn, const QueueEntry& e) {
    return txn.put(queue_dbi, keys::queue_key(e.mailbox, e.seq), encode(e));
  }

  Status update_record(WriteTxn& txn, const std::string& mailbox,
                       const std::function<void(MailboxRecord&)>& change) {
    MailboxRecord r = read_record(txn.read(mailbox_dbi, mailbox), mailbox);
    change(r);
    return txn.put(mailbox_dbi, mailbox, encode(r));
  }

  // Stores a message put: body and meta once, an entry per recipient's mailbox,
  // mailbox records for mailboxes seen for the first time. The same code applies
  // it at intake and again from the journal. `states` (optional) gets the state of
  // each recipient's mailbox.
  Status apply_put(WriteTxn& txn, const StoredPut& p, std::string_view content,
                   std::vector<MailboxState>* states) {
    Status st = txn.put(body_dbi, p.meta.id, content, MDB_NOOVERWRITE);
    if (!st.is_ok()) return st;
    if (st = txn.put(meta_dbi, p.meta.id, encode(p.meta)); !st.is_ok()) return st;
    uint64_t seq = 0;
    if (auto v = txn.read(info_dbi, kSeqKey)) seq = keys::read_u64_be(*v);
    const int64_t arrival = p.meta.arrival_us;
    std::vector<std::string> mailboxes;
    for (const QueueEntry& e : p.entries) {
      auto bytes = txn.read(mailbox_dbi, e.mailbox);
      MailboxRecord record = read_record(bytes, e.mailbox);
      if (!bytes) {
        if (record.state != MailboxState::kHeld) record.deliverable_since_us = arrival;
        if (st = txn.put(mailbox_dbi, e.mailbox, encode(record)); !st.is_ok()) return st;
      }
      if (states != nullptr) states->push_back(record.state);
      // A new entry never replaces one (MDB_KEYEXIST fails the put: a bug, not mail lost).
      st = txn.put(queue_dbi, keys::queue_key(e.mailbox, e.seq), encode(e), MDB_NOOVERWRITE);
      if (!st.is_ok()) return st;
      seq = std::max(seq, e.seq);
      txn.after_commit([this, e] { counters.add(e); });
      mailboxes.push_back(e.mailbox);
    }
    txn.after_commit([this, mailboxes = std::move(mailboxes)] {
      net::post(io, [shared = observers, mailboxes] {
        std::vector<std::function<void(const std::vector<std::string>&)>> list;
        {
          std::lock_guard lock(shared->mu);
          list = shared->list;
        }
        for (auto& observer : list) observer(mailboxes);
      });
    });
    return txn.put(info_dbi, kSeqKey, keys::u64_be(seq));
  }

  // Applies a journaled put again; one already stored is left as it is. A queue
  // key that is already taken (by another message: never by design, but a journal
  // and a data file that disagree must not cost a message) is never overwritten:
  // the replayed entry gets the sequence *last_seq + 1 instead, where *last_seq is
  // at least every sequence the spool and the records being replayed use.
  Status replay_put(WriteTxn& txn, std::string_view head, std::string_view content,
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

  // The largest queue sequence that any of `records` uses (0 if none).
  static uint64_t last_seq_of(const std::vector<RecoveredRecord>& records) {
    uint64_t last = 0;
    for (const RecoveredRecord& r : records) {
      StoredPut p;
      if (!decode_put(r.head, p)) continue;
      for (const QueueEntry& e : p.entries) last = std::max(last, e.seq);
    }
    return last;
  }

  // Applies the journal's records that the last LMDB commit does not hold.
  Status recover_journal(uint64_t applied) {
    std::vector<RecoveredRecord> records = journal->recover(applied);
    if (records.empty()) return Status::ok();
    for (int attempt = 0;; ++attempt) {
      MDB_txn* raw = nullptr;
      Status s = lmdb_status(mdb_txn_begin(env, nullptr, 0, &raw), "mdb_txn_begin");
      if (!s.is_ok()) return s;
      WriteTxn txn(raw);
      uint64_t last_seq = last_seq_of(records);
      for (const RecoveredRecord& r : records) {
        if (s = replay_put(txn, r.head, r.bulk, last_seq); !s.is_ok()) break;
      }
      if (s.is_ok()) s = txn.put(info_dbi, kJournalAppliedKey, keys::u64_be(records.back().seq));
      if (s.is_ok()) {
        int rc = mdb_txn_commit(raw);
        if (rc == MDB_SUCCESS) break;
        if (rc != MDB_MAP_FULL) return lmdb_status(rc, "mdb_txn_commit (journal recovery)");
      } else {
        mdb_txn_abort(raw);
        if (!txn.map_full()) return s;
      }
      if (attempt >= 8) return Status::no_space("LMDB map full during journal recovery");
      if (s = grow_map(); !s.is_ok()) return s;
    }
    spdlog::info("spool: {} messages recovered from the journal (records {} to {})", records.size(),
                 records.front().seq, records.back().seq);
    journal->restart(records.back().seq);
    return Status::ok();
  }

  void rebuild_totals() {
    ReadTxn txn(*this);
    if (txn.get() == nullptr) return;
    counters.clear();
    for_each_entry(txn.get(), queue_dbi, "", [&](QueueEntry e) {
      counters.add(e);
      return true;
    });
  }

  void refresh_disk() {
    struct statvfs vfs {};
    if (statvfs(options.path.c_str(), &vfs) != 0) return;
    uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    disk_free.store(free_bytes);
    bool low = free_bytes < options.min_free_disk;
    if (low != disk_low.exchange(low)) {
      if (low) {
        spdlog::error("spool: free disk {} bytes is below min_free_disk {}: intake answers 452",
                      free_bytes, options.min_free_disk);
      } else {
        spdlog::info("spool: free disk {} bytes is above min_free_disk again", free_bytes);
      }
    }
  }
};

Spool::Spool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Spool::~Spool() = default;

Result<std::unique_ptr<Spool>> Spool::open(const SpoolOptions& options, net::any_io_executor io) {
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::io_error("cannot create spool directory " + options.path + ": " + ec.message());

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->io = std::move(io);
  Status s = lmdb_status(mdb_env_create(&impl->env), "mdb_env_create");
  if (!s.is_ok()) return s;
  mdb_env_set_maxdbs(impl->env, 8);
  // Start from the larger of the configured size and the file already there.
  uint64_t size = options.initial_map_size;
  std::string data_file = options.path + "/data.mdb";
  if (struct stat st {}; ::stat(data_file.c_str(), &st) == 0) {
    size = std::max<uint64_t>(size, static_cast<uint64_t>(st.st_size));
  }
  impl->map_size = size;
  mdb_env_set_mapsize(impl->env, size);
  // Durable by default: no MDB_NOSYNC / MDB_NOMETASYNC on the acknowledged path.
  int rc = mdb_env_open(impl->env, options.path.c_str(), MDB_NOTLS, 0600);
  if (rc != MDB_SUCCESS) {
    return Status::io_error("cannot open spool " + options.path + ": " + mdb_strerror(rc));
  }
  MDB_envinfo info{};
  mdb_env_info(impl->env, &info);
  impl->map_size = info.me_mapsize;

  MDB_txn* txn = nullptr;
  if (s = lmdb_status(mdb_txn_begin(impl->env, nullptr, 0, &txn), "mdb_txn_begin"); !s.is_ok()) {
    return s;
  }
  const std::pair<const char*, MDB_dbi*> tables[] = {{"meta", &impl->meta_dbi},
                                                     {"body", &impl->body_dbi},
                                                     {"queue", &impl->queue_dbi},
                                                     {"mailbox", &impl->mailbox_dbi},
                                                     {"info", &impl->info_dbi}};
  for (const auto& [name, dbi] : tables) {
    rc = mdb_dbi_open(txn, name, MDB_CREATE, dbi);
    if (rc != MDB_SUCCESS) {
      mdb_txn_abort(txn);
      return Status::io_error(std::string("cannot open spool table ") + name + ": " + mdb_strerror(rc));
    }
  }
  // The journal's epoch ties its records to this spool (a journal left beside a
  // new data file is ignored); `applied` is the last record LMDB holds.
  uint64_t epoch = 0, applied = 0;
  {
    WriteTxn setup(txn);
    if (auto v = setup.read(impl->info_dbi, kJournalEpochKey)) epoch = keys::read_u64_be(*v);
    if (auto v = setup.read(impl->info_dbi, kJournalAppliedKey)) applied = keys::read_u64_be(*v);
    if (epoch == 0) {
      std::random_device random;
      epoch = (static_cast<uint64_t>(random()) << 32) | random() | 1;
      s = setup.put(impl->info_dbi, kJournalEpochKey, keys::u64_be(epoch));
      if (!s.is_ok()) {
        mdb_txn_abort(txn);
        return s;
      }
    }
  }
  if (s = lmdb_status(mdb_txn_commit(txn), "mdb_txn_commit"); !s.is_ok()) return s;

  // The journal is always opened and recovered: HOLDD_SPOOL_JOURNAL=0 (benchmarks)
  // only stops new records.
  auto journal = IntakeJournal::open(options.path + "/journal", epoch);
  if (!journal.ok()) return journal.status();
  impl->journal = std::move(*journal);
  if (options.journal_sync_fails) impl->journal->inject_sync_failure(options.journal_sync_fails);
  if (s = impl->recover_journal(applied); !s.is_ok()) {
    return Status::io_error("cannot recover the spool journal in " + options.path + ": " + s.message());
  }
  // After recovery: the journal's records carry the keys of the holdd that wrote them.
  auto keys_folded = migrate_mailbox_keys(
      impl->env, {impl->mailbox_dbi, impl->queue_dbi, impl->meta_dbi, impl->info_dbi},
      options.fold_local_part_case, [raw = impl.get()] { return raw->grow_map(); });
  if (!keys_folded) return keys_folded.status();
  const char* journal_env = std::getenv("HOLDD_SPOOL_JOURNAL");
  const bool journaling = journal_env == nullptr || std::string_view(journal_env) != "0";

  // Queue IDs grow: start past the largest one stored (fixed-width hex sorts numerically).
  {
    Impl::ReadTxn read(*impl);
    MDB_cursor* cursor = nullptr;
    if (read.get() != nullptr && mdb_cursor_open(read.get(), impl->meta_dbi, &cursor) == MDB_SUCCESS) {
      MDB_val k, v;
      if (mdb_cursor_get(cursor, &k, &v, MDB_LAST) == MDB_SUCCESS) {
        impl->last_id = std::strtoull(std::string(to_view(k)).c_str(), nullptr, 16);
      }
      mdb_cursor_close(cursor);
    }
  }
  impl->rebuild_totals();
  impl->refresh_disk();
  Impl* raw = impl.get();
  // Preallocating data.mdb pays when every put waits for an LMDB commit. With the
  // journal, LMDB commits are few and off the 250's path, while a top-up (MiBs of
  // zeros and an fdatasync on the writer thread) stalls every session for 10-20 ms:
  // measured p99 intake latency 15.8 ms with it, 4.4 ms without (docs/performance.md).
  // HOLDD_SPOOL_PREALLOCATE=1 or =0 forces it on or off, for benchmarks.
  const char* prealloc_env = std::getenv("HOLDD_SPOOL_PREALLOCATE");
  const bool preallocate =
      prealloc_env != nullptr ? std::string_view(prealloc_env) != "0" : !journaling;
  impl->preallocation = std::make_unique<SpoolPreallocation>(raw->env, preallocate);
  GroupCommitWriter::Journaling journal_use;
  if (journaling) {
    journal_use.journal = raw->journal.get();
    journal_use.replay = [raw](WriteTxn& w, const JournalRecord& r) {
      uint64_t last_seq = 0;
      return raw->replay_put(w, r.head, r.bulk ? std::string_view(*r.bulk) : std::string_view(),
                             last_seq);
    };
    journal_use.max_delay = std::chrono::microseconds(std::max<int64_t>(0, options.journal_commit_delay_us));
    journal_use.mark_applied = [raw](WriteTxn& w, uint64_t seq) {
      return w.put(raw->info_dbi, kJournalAppliedKey, keys::u64_be(seq));
    };
  }
  auto on_fatal = [io = raw->io, shared = raw->fatal](const Status& status) {
    net::post(io, [shared, status] {
      std::function<void(const Status&)> handler;
      {
        std::lock_guard lock(shared->mu);
        handler = shared->handler;
      }
      if (handler) handler(status);
    });
  };
  impl->writer = std::make_unique<GroupCommitWriter>(
      raw->env, [raw] { return raw->grow_map(); }, [raw] { raw->preallocation->top_up(); },
      std::move(journal_use), std::move(on_fatal));
  if (options.lmdb_commit_error) impl->writer->inject_commit_error(options.lmdb_commit_error);
  return std::unique_ptr<Spool>(new Spool(std::move(impl)));
}

std::string Spool::new_id() {
  uint64_t now = static_cast<uint64_t>(now_unix_micros());
  uint64_t last = impl_->last_id.load();
  uint64_t next;
  do {
    next = std::max(now, last + 1);
  } while (!impl_->last_id.compare_exchange_weak(last, next));
  char buf[24];
  std::snprintf(buf, sizeof buf, "%014llX", static_cast<unsigned long long>(next));
  return buf;
}

bool Spool::low_on_disk() {
  int64_t now = now_unix_micros();
  if (now - impl_->disk_checked_us.load() > 1'000'000) {
    impl_->disk_checked_us = now;
    impl_->refresh_disk();
  }
  return impl_->disk_low.load();
}

void Spool::on_queued(std::function<void(const std::vector<std::string>&)> observer) {
  std::lock_guard lock(impl_->observers->mu);
  impl_->observers->list.push_back(std::move(observer));
}

void Spool::on_fatal(std::function<void(const Status&)> handler) {
  std::lock_guard lock(impl_->fatal->mu);
  impl_->fatal->handler = std::move(handler);
}

bool Spool::healthy(std::chrono::nanoseconds stall) const { return impl_->writer->healthy(stall); }

net::awaitable<Result<PutReceipt>> Spool::put(IncomingMessage msg) {
  if (low_on_disk()) co_return Status::no_space("free disk below min_free_disk");
  auto shared = std::make_shared<IncomingMessage>(std::move(msg));
  auto receipt = std::make_shared<PutReceipt>();
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, shared, receipt](WriteTxn& txn) -> Status {
    IncomingMessage& m = *shared;
    const int64_t now = now_unix_micros();
    uint64_t seq = 0;
    if (auto v = txn.read(impl->info_dbi, kSeqKey)) seq = keys::read_u64_be(*v);
    m.meta.arrival_us = now;
    m.meta.size = m.content.size();
    m.meta.refs = static_cast<uint32_t>(m.recipients.size());
    StoredPut p;
    p.meta = m.meta;
    for (const QueuedRecipient& r : m.recipients) {
      QueueEntry e;
      e.mailbox = r.mailbox;
      e.seq = ++seq;
      e.id = m.meta.id;
      e.recipient = r;
      e.sender = m.meta.sender;
      e.size = m.meta.received_size;
      e.arrival_us = now;
      p.entries.push_back(std::move(e));
    }
    receipt->arrival_us = now;
    receipt->states.clear();
    Status st = impl->apply_put(txn, p, m.content, &receipt->states);
    if (!st.is_ok()) return st;
    // The content is shared with the journal record, not copied.
    txn.journal(JournalRecord{encode_put(p), std::shared_ptr<const std::string>(shared, &shared->content)});
    return st;
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) {
    // A full disk often surfaces as EIO from the commit's write, not ENOSPC: if
    // the message no longer fits, say so (452 4.3.1), not "local error" (451).
    impl->refresh_disk();
    if (s.code() == Status::Code::kIOError &&
        (impl->disk_low.load() || impl->disk_free.load() < 2 * shared->content.size())) {
      co_return Status::no_space("spool disk full: " + s.message());
    }
    co_return s;
  }
  co_return std::move(*receipt);
}

net::awaitable<Status> Spool::sync() {
  // A request without a journal record: the writer commits LMDB for it, with
  // every journaled put before it.
  GroupCommitWriter::Apply nothing = [](WriteTxn&) { return Status::ok(); };
  co_return co_await impl_->write(std::move(nothing));
}

net::awaitable<Status> Spool::sync(std::chrono::milliseconds timeout) {
  // The writer's completion cancels the timer; whichever comes first ends the wait.
  struct Wait {
    explicit Wait(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    std::optional<Status> status;
  };
  auto ex = co_await net::this_coro::executor;
  auto wait = std::make_shared<Wait>(ex);
  wait->timer.expires_after(timeout);
  GroupCommitWriter::Apply nothing = [](WriteTxn&) { return Status::ok(); };
  impl_->writer->submit(std::move(nothing), [wait, ex](Status s) {
    net::post(ex, [wait, s = std::move(s)]() mutable {
      wait->status = std::move(s);
      wait->timer.cancel();
    });
  });
  if (!wait->status) co_await wait->timer.async_wait(net::as_tuple(net::use_awaitable));
  if (wait->status) co_return *wait->status;
  co_return Status::timeout("spool sync still waiting after " + std::to_string(timeout.count()) + " ms");
}

net::awaitable<Result<std::vector<StateTransition>>> Spool::set_state(
    std::vector<std::string> mailboxes, MailboxState to, std::string by) {
  auto transitions = std::make_shared<std::vector<StateTransition>>();
  auto names = std::make_shared<std::vector<std::string>>(std::move(mailboxes));
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, names, transitions, to, by](WriteTxn& txn) -> Status {
    int64_t now = now_unix_micros();
    transitions->clear();
    std::unordered_set<std::string> seen;
    for (const std::string& mailbox : *names) {
      if (!seen.insert(mailbox).second) continue;
      MailboxRecord r = impl->read_record(txn.read(impl->mailbox_dbi, mailbox), mailbox);
      StateTransition t{mailbox, r.state, to};
      if (t.changed()) {
        r.history.push_back(StateChange{now, r.state, to, by});
        if (r.history.size() > kMaxHistory) r.history.erase(r.history.begin());
        // SPEC: the warn_after clock starts when mail becomes deliverable.
        if (r.state == MailboxState::kHeld) r.deliverable_since_us = now;
        r.state = to;
      }
      if (r.deliverable_since_us == 0 && r.state != MailboxState::kHeld) {
        r.deliverable_since_us = now;
      }
      Status st = txn.put(impl->mailbox_dbi, mailbox, encode(r));
      if (!st.is_ok()) return st;
      transitions->push_back(std::move(t));
    }
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return std::move(*transitions);
}

net::awaitable<Status> Spool::delivered(QueueEntry entry, UpstreamKind upstream, std::string reply) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, entry = std::move(entry), upstream,
                                  reply = std::move(reply)](WriteTxn& txn) -> Status {
    std::optional<QueueEntry> stored = impl->current(txn, entry);
    if (!stored) return Status::ok();  // dropped meanwhile: nothing left to remove
    Status st = impl->remove_entry(txn, *stored);
    if (!st.is_ok()) return st;
    int64_t now = now_unix_micros();
    st = impl->update_record(txn, entry.mailbox, [&](MailboxRecord& r) {
      r.last_delivery_us = now;
      r.last_delivery = std::string(to_string(upstream)) + ": " + reply;
      ++r.delivered;
    });
    if (!st.is_ok()) return st;
    return txn.put(impl->info_dbi, last_relay_key(upstream), keys::u64_be(static_cast<uint64_t>(now)));
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Status> Spool::deferred(QueueEntry entry, std::string error, int64_t next_attempt_us) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, entry = std::move(entry), error = std::move(error),
                                  next_attempt_us](WriteTxn& txn) -> Status {
    std::optional<QueueEntry> stored = impl->current(txn, entry);
    if (!stored) return Status::ok();
    txn.after_commit([impl, before = *stored] { impl->counters.deferred(before); });
    int64_t now = now_unix_micros();
    ++stored->attempts;
    stored->last_attempt_us = now;
    stored->next_attempt_us = next_attempt_us;
    stored->last_error = error;
    Status st = impl->put_entry(txn, *stored);
    if (!st.is_ok()) return st;
    return impl->update_record(txn, entry.mailbox, [&](MailboxRecord& r) {
      r.last_error_us = now;
      r.last_error = error;
    });
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Status> Spool::parked(QueueEntry entry, std::string reply) {
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, entry = std::move(entry),
                                  reply = std::move(reply)](WriteTxn& txn) -> Status {
    std::optional<QueueEntry> stored = impl->current(txn, entry);
    if (!stored || stored->parked) return Status::ok();
    txn.after_commit([impl, before = *stored] { impl->counters.parked(before); });
    int64_t now = now_unix_micros();
    ++stored->attempts;
    stored->last_attempt_us = now;
    stored->next_attempt_us = 0;
    stored->last_error = reply;
    stored->parked = true;
    Status st = impl->put_entry(txn, *stored);
    if (!st.is_ok()) return st;
    return impl->update_record(txn, entry.mailbox, [&](MailboxRecord& r) {
      r.last_error_us = now;
      r.last_error = reply;
      ++r.parked;
    });
  };
  co_return co_await impl->write(std::move(apply));
}

net::awaitable<Result<uint64_t>> Spool::requeue(std::optional<std::string> mailbox) {
  auto count = std::make_shared<uint64_t>(0);
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, mailbox, count](WriteTxn& txn) -> Status {
    *count = 0;
    std::vector<QueueEntry> changed;
    for_each_entry(txn.get(), impl->queue_dbi, mailbox ? keys::queue_prefix(*mailbox) : "",
                   [&](QueueEntry e) {
                     if (e.parked || e.next_attempt_us != 0) changed.push_back(std::move(e));
                     return true;
                   });
    std::vector<QueueEntry> unparked;
    for (QueueEntry& e : changed) {
      if (e.parked) {
        ++*count;
        unparked.push_back(e);
      }
      e.parked = false;
      e.next_attempt_us = 0;
      Status st = impl->put_entry(txn, e);
      if (!st.is_ok()) return st;
    }
    txn.after_commit([impl, unparked = std::move(unparked)] {
      for (const QueueEntry& before : unparked) impl->counters.unparked(before);
    });
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return *count;
}

net::awaitable<Result<std::vector<QueueEntry>>> Spool::drop(std::vector<std::string> ids) {
  auto dropped = std::make_shared<std::vector<QueueEntry>>();
  Impl* impl = impl_.get();
  GroupCommitWriter::Apply apply = [impl, ids = std::move(ids), dropped](WriteTxn& txn) -> Status {
    dropped->clear();
    std::unordered_set<std::string> wanted(ids.begin(), ids.end());
    std::vector<QueueEntry> doomed;
    for_each_entry(txn.get(), impl->queue_dbi, "", [&](QueueEntry e) {
      if (wanted.count(e.id) != 0) doomed.push_back(std::move(e));
      return true;
    });
    for (const QueueEntry& e : doomed) {
      Status st = impl->remove_entry(txn, e);
      if (!st.is_ok()) return st;
    }
    *dropped = std::move(doomed);
    return Status::ok();
  };
  Status s = co_await impl->write(std::move(apply));
  if (!s.is_ok()) co_return s;
  co_return std::move(*dropped);
}

MailboxRecord Spool::mailbox(const std::string& key) const {
  Impl::ReadTxn txn(*impl_);
  return impl_->read_record(txn.read(impl_->mailbox_dbi, key), key);
}

std::vector<MailboxRecord> Spool::mailbox_records() const {
  std::vector<MailboxRecord> out;
  Impl::ReadTxn txn(*impl_);
  MDB_cursor* cursor = nullptr;
  if (txn.get() == nullptr || mdb_cursor_open(txn.get(), impl_->mailbox_dbi, &cursor) != MDB_SUCCESS) {
    return out;
  }
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    std::string key(to_view(k));
    out.push_back(impl_->read_record(to_view(v), key));
  }
  mdb_cursor_close(cursor);
  return out;
}

std::optional<QueueEntry> Spool::head(const std::string& mailbox) const {
  Impl::ReadTxn txn(*impl_);
  std::optional<QueueEntry> head;
  if (txn.get() == nullptr) return head;
  for_each_entry(txn.get(), impl_->queue_dbi, keys::queue_prefix(mailbox), [&](QueueEntry e) {
    if (e.parked) return true;
    head = std::move(e);
    return false;
  });
  return head;
}

std::vector<QueueEntry> Spool::queue(const std::string& mailbox) const {
  Impl::ReadTxn txn(*impl_);
  std::vector<QueueEntry> out;
  if (txn.get() == nullptr) return out;
  for_each_entry(txn.get(), impl_->queue_dbi, keys::queue_prefix(mailbox), [&](QueueEntry e) {
    out.push_back(std::move(e));
    return true;
  });
  return out;
}

std::vector<QueueEntry> Spool::entries_of(const std::string& id) const {
  Impl::ReadTxn txn(*impl_);
  std::vector<QueueEntry> out;
  if (txn.get() == nullptr) return out;
  for_each_entry(txn.get(), impl_->queue_dbi, "", [&](QueueEntry e) {
    if (e.id == id) out.push_back(std::move(e));
    return true;
  });
  return out;
}

Result<MessageMeta> Spool::meta(const std::string& id) const {
  Impl::ReadTxn txn(*impl_);
  auto bytes = txn.read(impl_->meta_dbi, id);
  MessageMeta meta;
  if (!bytes) return Status::not_found("no message " + id);
  if (!decode(*bytes, meta)) return Status::io_error("unreadable message record " + id);
  return meta;
}

Result<std::string> Spool::content(const std::string& id) const {
  Impl::ReadTxn txn(*impl_);
  auto bytes = txn.read(impl_->body_dbi, id);
  if (!bytes) return Status::not_found("no message body " + id);
  return std::string(*bytes);
}

QueueTotals Spool::totals(const std::string& mailbox) const { return impl_->counters.totals(mailbox); }

std::map<std::string, QueueTotals> Spool::all_totals() const { return impl_->counters.all(); }

Backlog Spool::unparked_before(const std::string& mailbox, int64_t before_us) const {
  return impl_->counters.unparked_before(mailbox, before_us);
}

int64_t Spool::last_relay_us(UpstreamKind upstream) const {
  Impl::ReadTxn txn(*impl_);
  auto bytes = txn.read(impl_->info_dbi, last_relay_key(upstream));
  return bytes ? static_cast<int64_t>(keys::read_u64_be(*bytes)) : 0;
}

SpoolStats Spool::stats() const {
  SpoolStats s;
  std::shared_lock lock(impl_->resize_mu);
  MDB_envinfo info{};
  MDB_stat stat{};
  mdb_env_info(impl_->env, &info);
  mdb_env_stat(impl_->env, &stat);
  s.map_size = info.me_mapsize;
  s.map_used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
  lock.unlock();
  Impl::ReadTxn txn(*impl_);
  MDB_stat meta{};
  if (txn.get() != nullptr && mdb_stat(txn.get(), impl_->meta_dbi, &meta) == MDB_SUCCESS) {
    s.messages = meta.ms_entries;
  }
  impl_->refresh_disk();
  s.disk_free = impl_->disk_free.load();
  return s;
}

MailboxState Spool::initial_state() const { return impl_->options.initial_state; }

}  // namespace holdd
