// migrate_mailbox_keys: folds mailbox keys with capitals in the local part once,
// at open, when local_part_case is "insensitive" (mailbox_key_migration.h).
#include "holdd/spool/mailbox_key_migration.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "holdd/route/address.h"
#include "holdd/spool/keys.h"
#include "holdd/spool/records.h"
#include "holdd/spool/write_txn.h"

namespace holdd {
namespace {

constexpr std::string_view kInsensitive = "insensitive";
// The Spool keeps this many state changes per mailbox (spool_write.cpp); a merge joins
// two histories, so it trims to the same bound, dropping the oldest.
constexpr size_t kMaxHistory = 200;
// A merge rewrites records and entries in one transaction; growing the map this
// many times without success means the disk, not the map, is the problem.
constexpr int kMaxAttempts = 8;

struct StoredRecord {
  std::string key;  // as stored
  MailboxRecord record;
};

struct StoredEntry {
  std::string key;  // the whole queue key, as stored
  uint64_t seq = 0;
  std::string value;  // the encoded QueueEntry, moved unchanged
  std::string id;
};

// Shows `visit` every key of `dbi` that starts with `prefix` (all keys with an
// empty one), in key order, with its value.
template <class Visit>
Status scan(MDB_txn* txn, MDB_dbi dbi, std::string_view prefix, Visit visit) {
  MDB_cursor* cursor = nullptr;
  if (Status s = lmdb_status(mdb_cursor_open(txn, dbi, &cursor), "mdb_cursor_open"); !s.is_ok()) return s;
  MDB_val k = to_val(prefix), v;
  int rc = mdb_cursor_get(cursor, &k, &v, prefix.empty() ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == MDB_SUCCESS) {
    std::string_view key = to_view(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    visit(key, to_view(v));
    rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cursor);
  return rc == MDB_SUCCESS || rc == MDB_NOTFOUND ? Status::ok() : lmdb_status(rc, "mdb_cursor_get");
}

bool is_empty(MDB_txn* txn, const MailboxKeyTables& t) {
  MDB_stat records{}, entries{};
  return mdb_stat(txn, t.mailbox, &records) == MDB_SUCCESS && mdb_stat(txn, t.queue, &entries) == MDB_SUCCESS &&
         records.ms_entries == 0 && entries.ms_entries == 0;
}

int64_t last_change_us(const MailboxRecord& r) { return r.history.empty() ? 0 : r.history.back().at_us; }

// One record from several that differ only by case (`parts`, the one already
// under the folded key first when there is one).
MailboxRecord merge(const std::string& folded, const std::vector<StoredRecord>& parts, int64_t now) {
  // The state: held if any part is held, otherwise that of the part changed last
  // (on a tie the first: the record already under the folded key).
  const MailboxRecord* latest = &parts.front().record;
  bool any_held = false;
  for (const StoredRecord& p : parts) {
    if (last_change_us(p.record) > last_change_us(*latest)) latest = &p.record;
    any_held = any_held || p.record.state == MailboxState::kHeld;
  }
  MailboxRecord m;
  m.mailbox = folded;
  m.state = any_held ? MailboxState::kHeld : latest->state;
  m.deliverable_since_us = latest->deliverable_since_us;
  for (const StoredRecord& p : parts) {
    const MailboxRecord& r = p.record;
    m.history.insert(m.history.end(), r.history.begin(), r.history.end());
    if (r.last_delivery_us > m.last_delivery_us) {
      m.last_delivery_us = r.last_delivery_us;
      m.last_delivery = r.last_delivery;
    }
    if (r.last_error_us > m.last_error_us) {
      m.last_error_us = r.last_error_us;
      m.last_error = r.last_error;
    }
    m.delivered += r.delivered;
    m.parked += r.parked;
  }
  std::stable_sort(m.history.begin(), m.history.end(),
                   [](const StateChange& a, const StateChange& b) { return a.at_us < b.at_us; });
  // Mail of a part whose state was not the merged one now follows another state:
  // that is a state change, and `show` says who made it.
  std::string names;
  for (const StoredRecord& p : parts) names += (names.empty() ? "" : ", ") + p.key;
  for (const StoredRecord& p : parts) {
    if (p.record.state != m.state) {
      m.history.push_back(StateChange{now, p.record.state, m.state,
                                      "spool: merged " + names + " (local_part_case = \"insensitive\")"});
    }
  }
  if (m.history.size() > kMaxHistory) {
    m.history.erase(m.history.begin(), m.history.end() - static_cast<std::ptrdiff_t>(kMaxHistory));
  }
  return m;
}

// The whole migration inside `txn`. Reads everything it will change first, then
// writes, so no cursor walks a table being rewritten.
Status fold_keys(WriteTxn& txn, const MailboxKeyTables& t, MailboxKeyMigration& report) {
  report = MailboxKeyMigration{};
  report.ran = true;
  const int64_t now = now_unix_micros();

  // Records: folded key -> the records that end there (an existing one first).
  std::map<std::string, std::vector<StoredRecord>> groups;
  Status s = scan(txn.get(), t.mailbox, "", [&](std::string_view key, std::string_view value) {
    std::string folded = fold_mailbox_key(key);
    if (folded == key) return;
    StoredRecord r{std::string(key), {}};
    if (!decode(value, r.record)) {
      // Its state is unknown: held keeps the merged mailbox's mail until an
      // operator looks, where a guess could relay it to the wrong server.
      spdlog::warn("spool: mailbox record {} is unreadable; folded into {} as held", r.key, folded);
      r.record = MailboxRecord{};
      r.record.state = MailboxState::kHeld;
    }
    r.record.mailbox = r.key;
    groups[folded].push_back(std::move(r));
  });
  if (!s.is_ok()) return s;

  // Queue entries under a key that folds, grouped by the folded mailbox.
  std::map<std::string, std::vector<StoredEntry>> moving;
  s = scan(txn.get(), t.queue, "", [&](std::string_view key, std::string_view value) {
    std::string_view mailbox;
    uint64_t seq = 0;
    if (!keys::parse_queue_key(key, mailbox, seq)) return;
    std::string folded = fold_mailbox_key(mailbox);
    if (folded == mailbox) return;
    QueueEntry e;
    decode(value, e);
    moving[folded].push_back(StoredEntry{std::string(key), seq, std::string(value), e.id});
  });
  if (!s.is_ok()) return s;

  for (auto& [folded, parts] : groups) {
    if (auto bytes = txn.read(t.mailbox, folded)) {
      StoredRecord existing{folded, {}};
      if (!decode(*bytes, existing.record)) existing.record.state = MailboxState::kHeld;  // as above
      existing.record.mailbox = folded;
      parts.insert(parts.begin(), std::move(existing));
    }
    const bool merging = parts.size() > 1;
    MailboxRecord merged = merging ? merge(folded, parts, now) : parts.front().record;
    merged.mailbox = folded;
    for (const StoredRecord& p : parts) {
      if (p.key == folded) continue;
      if (s = txn.erase(t.mailbox, p.key); !s.is_ok()) return s;
    }
    if (s = txn.put(t.mailbox, folded, encode(merged)); !s.is_ok()) return s;
    if (merging) {
      std::string names;
      for (const StoredRecord& p : parts) {
        names += (names.empty() ? "" : ", ") + p.key + " (" + std::string(to_string(p.record.state)) + ")";
      }
      spdlog::info("spool: mailboxes {} merged into {} ({}): local parts compare case-insensitively",
                   names, folded, to_string(merged.state));
      report.mailboxes_merged += parts.size() - 1;
    } else {
      spdlog::info("spool: mailbox {} renamed to {}: local parts compare case-insensitively", parts.front().key,
                   folded);
      ++report.mailboxes_renamed;
    }
  }

  for (auto& [folded, entries] : moving) {
    // The messages the folded mailbox already has: a second entry for one of
    // them would deliver it twice to the same person.
    std::unordered_set<std::string> ids;
    std::map<uint64_t, std::string> kept;  // seq -> id, of entries under the folded key
    std::string prefix = keys::queue_prefix(folded);
    s = scan(txn.get(), t.queue, prefix, [&](std::string_view key, std::string_view value) {
      if (key.size() != prefix.size() + 8) return;  // not a queue key
      QueueEntry e;
      decode(value, e);
      kept.emplace(keys::read_u64_be(key.substr(prefix.size())), e.id);
    });
    if (!s.is_ok()) return s;
    // Walk all of the mailbox's entries in seq (arrival) order: the first entry
    // of a message stays wherever it was stored.
    std::map<uint64_t, const StoredEntry*> order;
    for (const StoredEntry& e : entries) order.emplace(e.seq, &e);
    for (const auto& [seq, id] : kept) order.emplace(seq, nullptr);
    for (const auto& [seq, entry] : order) {
      const std::string& id = entry != nullptr ? entry->id : kept[seq];
      const bool duplicate = !id.empty() && !ids.insert(id).second;
      if (entry == nullptr) {
        // Already under the folded key. A later duplicate of an earlier moved
        // entry: drop this one instead.
        if (duplicate) {
          if (s = txn.erase(t.queue, keys::queue_key(folded, seq)); !s.is_ok()) return s;
        }
      } else {
        if (s = txn.erase(t.queue, entry->key); !s.is_ok()) return s;
        if (!duplicate) {
          if (s = txn.put(t.queue, keys::queue_key(folded, seq), entry->value); !s.is_ok()) return s;
          ++report.entries_moved;
        }
      }
      if (!duplicate) continue;
      // The message keeps its other entry, so its refs count drops by one and
      // never reaches zero here.
      if (auto bytes = txn.read(t.meta, id)) {
        MessageMeta meta;
        if (decode(*bytes, meta) && meta.refs > 1) {
          --meta.refs;
          if (s = txn.put(t.meta, id, encode(meta)); !s.is_ok()) return s;
        }
      }
      ++report.duplicates_dropped;
      spdlog::info("spool: message {} was queued for {} twice (spellings differing in case); one entry kept",
                   id, folded);
    }
  }
  return txn.put(t.info, kMailboxKeysCaseKey, kInsensitive);
}

}  // namespace

Result<MailboxKeyMigration> migrate_mailbox_keys(MDB_env* env, const MailboxKeyTables& tables,
                                                 bool fold_local_part_case,
                                                 const std::function<Status()>& grow_map) {
  for (int attempt = 0;; ++attempt) {
    std::optional<WriteTxn> begun;
    Status s = lmdb_status(WriteTxn::begin(env, nullptr, begun), "mdb_txn_begin");
    if (!s.is_ok()) return s;
    WriteTxn& txn = *begun;
    const bool marked = txn.read(tables.info, kMailboxKeysCaseKey) == std::optional(kInsensitive);
    // Nothing to do: the keys are folded already, or exact mode has no claim to
    // take back. An empty spool has nothing to fold either: no write, so a new
    // spool opens with no extra commit (and the next open looks again).
    if (fold_local_part_case ? marked || is_empty(txn.get(), tables) : !marked) {
      return MailboxKeyMigration{};  // the transaction aborts: nothing written
    }
    MailboxKeyMigration report;
    // Exact mode rewrites nothing (every key, folded or not, is an exact key); it
    // only withdraws the marker, since what it stores from now on may have capitals.
    s = fold_local_part_case ? fold_keys(txn, tables, report) : txn.erase(tables.info, kMailboxKeysCaseKey);
    if (s.is_ok()) {
      int rc = txn.commit();
      if (rc == MDB_SUCCESS) {
        if (report.ran && report.mailboxes_renamed + report.mailboxes_merged + report.entries_moved > 0) {
          spdlog::info(
              "spool: mailbox keys folded to lower case: {} renamed, {} merged, {} queue entries moved, "
              "{} duplicate entries dropped",
              report.mailboxes_renamed, report.mailboxes_merged, report.entries_moved, report.duplicates_dropped);
        }
        return report;
      }
      if (rc != MDB_MAP_FULL) return lmdb_status(rc, "mdb_txn_commit (mailbox key migration)");
    } else if (!txn.map_full()) {
      return s;
    }
    begun.reset();  // aborted unless its commit ran: the map cannot grow under it
    if (attempt >= kMaxAttempts) return Status::no_space("LMDB map full during the mailbox key migration");
    if (s = grow_map(); !s.is_ok()) return s;
  }
}

}  // namespace holdd
