// The spool's reads: each a short read transaction on the last LMDB commit, or the
// in-memory totals (QueueCounters); safe from any thread.
#include <shared_mutex>

#include "holdd/spool/keys.h"
#include "queue_scan.h"
#include "spool_impl.h"

namespace holdd {

MailboxRecord Spool::mailbox(const std::string& key) const {
  Impl::ReadTxn txn(*impl_);
  return impl_->read_record(txn.read(impl_->mailbox_dbi, key), key);
}

bool Spool::has_mailbox(const std::string& key) const {
  Impl::ReadTxn txn(*impl_);
  return txn.read(impl_->mailbox_dbi, key).has_value();
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

std::optional<QueueEntry> Spool::head(const std::string& mailbox,
                                      const std::set<uint64_t>& skip) const {
  Impl::ReadTxn txn(*impl_);
  std::optional<QueueEntry> head;
  if (txn.get() == nullptr) return head;
  for_each_entry(txn.get(), impl_->queue_dbi, keys::queue_prefix(mailbox), [&](QueueEntry e) {
    if (e.parked || skip.count(e.seq) != 0) return true;
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

uint64_t Spool::Impl::info_u64(std::string_view key) const {
  ReadTxn txn(*this);
  auto bytes = txn.read(info_dbi, key);
  return bytes ? keys::read_u64_be(*bytes) : 0;
}

int64_t Spool::last_relay_us(UpstreamKind upstream) const {
  return static_cast<int64_t>(impl_->info_u64(last_relay_key(upstream)));
}

uint64_t Spool::forwarded_by_old() const { return impl_->info_u64(kForwardedOldTotalKey); }

int64_t Spool::last_forwarded_by_old_us() const {
  return static_cast<int64_t>(impl_->info_u64(kForwardedOldLastKey));
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
  impl_->disk.refresh();
  s.disk_free = impl_->disk.free_bytes();
  return s;
}

MailboxState Spool::initial_state() const { return impl_->options.initial_state; }

}  // namespace holdd
