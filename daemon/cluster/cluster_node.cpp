#include "holdd/cluster/cluster_node.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "holdd/base/printable.h"
#include "holdd/cluster/schema.h"

namespace holdd::cluster {

namespace {

constexpr std::chrono::seconds kPollInterval{1};
constexpr std::chrono::milliseconds kConfirmPoll{50};
constexpr size_t kRowsPerFetch = 5000;
constexpr const char* kIsoUtc = "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'";

using Params = std::vector<std::optional<std::string>>;

// A text[] literal for a $n::text[] parameter.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

uint64_t to_u64(const std::optional<std::string>& v) {
  if (!v || v->empty()) return 0;
  return std::stoull(*v);
}

std::string text(const std::optional<std::string>& v) { return v.value_or(""); }

// Runs `body` between BEGIN (with the state lock) and COMMIT; ROLLBACK on failure.
template <class T>
Result<T> in_state_transaction(PgConnection& db, const std::function<Result<T>(PgConnection&)>& body) {
  if (Status s = db.exec("BEGIN"); !s.is_ok()) return s;
  Status s = db.exec(kStateLockSql);
  if (s.is_ok()) {
    Result<T> r = body(db);
    if (r) {
      s = db.exec("SELECT pg_notify($1, '')", {std::string(kStateChannel)});
      if (s.is_ok()) s = db.exec("COMMIT");
      if (s.is_ok()) return r;
    } else {
      s = r.status();
    }
  }
  (void)db.exec("ROLLBACK");
  return s;
}

// Every `releasing` mailbox (or only those of the text[] literal `mailboxes`)
// whose nodes are all done becomes `migrated`, with a new change id; inside a
// state transaction.
Status finalize_releases(PgConnection& db, const std::optional<std::string>& mailboxes, const std::string& node) {
  return db.exec(
      "WITH fin AS ("
      "  UPDATE holdd_mailboxes m SET state = 'migrated', change_id = nextval('holdd_change_seq'),"
      "    changed_at = now(), changed_by = 'release done on every node'"
      "  WHERE m.state = 'releasing' AND ($1::text[] IS NULL OR m.mailbox = ANY($1::text[]))"
      "    AND NOT EXISTS (SELECT 1 FROM holdd_release_progress p"
      "                    WHERE p.mailbox = m.mailbox AND p.change_id = m.change_id AND p.done_at IS NULL)"
      "  RETURNING m.mailbox)"
      "INSERT INTO holdd_history (mailbox, from_state, to_state, by, node)"
      "  SELECT mailbox, 'releasing', 'migrated', 'release done on every node', $2 FROM fin",
      {mailboxes, node});
}

}  // namespace

struct ClusterNode::Row {
  std::string mailbox;
  std::string state;
  uint64_t change_id = 0;
  std::string changed_by;
  std::optional<uint64_t> sealed_seq;
  bool done = false;
};

ClusterNode::ClusterNode(net::any_io_executor ex, ClusterOptions options, Spool& spool, Dispatcher& dispatcher)
    : ex_(ex), options_(std::move(options)), spool_(spool), dispatcher_(dispatcher), db_(options_.conninfo, ex),
      timer_(ex), beat_(ex) {}

ClusterNode::~ClusterNode() { db_.stop(); }

void ClusterNode::wake() { timer_.cancel(); }

std::string ClusterNode::state_of(const std::string& mailbox) const {
  auto it = states_.find(mailbox);
  return it == states_.end() ? "" : it->second;
}

size_t ClusterNode::releasing_here() const {
  size_t n = 0;
  for (const auto& [m, r] : releases_) n += r.done ? 0 : 1;
  return n;
}

double ClusterNode::seconds_since_sync() const {
  if (last_sync_ == std::chrono::steady_clock::time_point{}) return -1;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - last_sync_).count();
}

net::awaitable<void> ClusterNode::start(std::chrono::seconds wait) {
  const std::string node = options_.node, version = options_.version;
  db_.start(
      [node, version](PgConnection& db) -> Status {
        int applied = 0;
        if (Status s = migrate_schema(db, &applied); !s.is_ok()) return s;
        if (applied > 0) spdlog::info("cluster: PostgreSQL schema now at version {}", schema_version());
        return db.exec(
            "INSERT INTO holdd_nodes (name, version) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, started_at = now(), last_seen = now()",
            {node, version});
      },
      [this] { wake(); });
  // Mailboxes this spool has that the database may not know.
  for (const MailboxRecord& r : spool_.mailbox_records()) unknown_.insert(r.mailbox);

  net::steady_timer t(ex_);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (!db_.connected() && std::chrono::steady_clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(net::as_tuple(net::use_awaitable));
  }
  if (db_.connected()) {
    // Twice: the first applies the states, the second those of the mailboxes
    // only this spool knew.
    Status s = co_await sync_once();
    if (s.is_ok()) s = co_await sync_once();
    if (s.is_ok()) {
      spdlog::info("cluster: node {} applied {} mailbox states (change {})", options_.node, states_.size(),
                   applied_);
    } else {
      spdlog::error("cluster: first sync failed: {}; going on with the states in the spool", s.message());
    }
  } else {
    spdlog::error("cluster: PostgreSQL not reachable within {}s ({}): accepting mail with the states in the "
                  "spool (a mailbox never seen before is held); catching up when it is back",
                  wait.count(), db_.down_reason());
  }
  heartbeating_ = true;
  net::co_spawn(ex_, heartbeat_loop(), [this](std::exception_ptr e) {
    heartbeating_ = false;
    if (e) spdlog::critical("cluster: the heartbeat stopped");
  });
  looping_ = true;
  net::co_spawn(ex_, loop(), [this](std::exception_ptr e) {
    looping_ = false;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& error) {
      spdlog::critical("cluster: the sync loop failed: {}", error.what());
    }
  });
}

net::awaitable<void> ClusterNode::stop() {
  stopping_ = true;
  wake();
  beat_.cancel();
  net::steady_timer t(ex_);
  while (looping_ || heartbeating_) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(net::as_tuple(net::use_awaitable));
  }
  db_.stop();
}

void ClusterNode::seen(const std::vector<std::string>& mailboxes) {
  for (const std::string& m : mailboxes) {
    if (!states_.contains(m)) unknown_.insert(m);
  }
}

net::awaitable<void> ClusterNode::loop() {
  while (!stopping_) {
    timer_.expires_after(kPollInterval);
    co_await timer_.async_wait(net::as_tuple(net::use_awaitable));
    if (stopping_) break;
    // A sync that throws (a bug, a value the database should not hold) is logged
    // and tried again at the next tick: the node must not stop following.
    Status s;
    try {
      s = co_await sync_once();
    } catch (const std::exception& error) {
      syncing_ = false;
      s = Status::io_error(std::string("sync failed: ") + error.what());
      spdlog::error("cluster: {}", s.message());
    }
    if (!s.is_ok() && s.code() != Status::Code::kCancelled) {
      spdlog::debug("cluster: sync: {}", s.message());
    }
  }
}

// Apart from the sync: applying a lock waits for relays in flight to end (a
// slow upstream may take minutes), and a node that stops saying it is alive
// meanwhile would be left out of the next lock's confirmation.
net::awaitable<void> ClusterNode::heartbeat_loop() {
  while (!stopping_) {
    uint64_t queued = 0, held = 0;
    for (const auto& [m, totals] : spool_.all_totals()) {
      queued += totals.messages;
      const std::string state = state_of(m);
      if (state == "held" || state == kReleasing ||
          (state.empty() && spool_.mailbox(m).state == MailboxState::kHeld)) {
        held += totals.messages;
      }
    }
    const std::string node = options_.node, version = options_.version;
    const uint64_t applied = applied_;
    const DbWork<bool> heartbeat = [node, version, queued, held, applied](PgConnection& db) -> Result<bool> {
      Status s = db.exec(
          "INSERT INTO holdd_nodes (name, version, queued, held, applied_change) VALUES ($1, $2, $3, $4, $5) "
          "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, last_seen = now(), "
          "queued = EXCLUDED.queued, held = EXCLUDED.held, "
          "applied_change = GREATEST(holdd_nodes.applied_change, EXCLUDED.applied_change)",
          {node, version, std::to_string(queued), std::to_string(held), std::to_string(applied)});
      if (!s.is_ok()) return s;
      return true;
    };
    (void)co_await db_.call<bool>(heartbeat);
    beat_.expires_after(kPollInterval);
    co_await beat_.async_wait(net::as_tuple(net::use_awaitable));
  }
}

net::awaitable<Status> ClusterNode::sync_once() {
  if (syncing_) {
    again_ = true;
    co_return Status::ok();
  }
  syncing_ = true;
  Status result;
  do {
    again_ = false;
    const std::string node = options_.node;
    const uint64_t after = applied_;
    // Named locals, not temporaries in the co_await (GCC 12 destroys those twice).
    const DbWork<std::vector<Row>> fetch_changes = [node, after](PgConnection& db) -> Result<std::vector<Row>> {
          Result<PgRows> r = db.query(
              "SELECT m.mailbox, m.state, m.change_id, m.changed_by, p.sealed_seq, p.done_at IS NOT NULL "
              "FROM holdd_mailboxes m LEFT JOIN holdd_release_progress p "
              "  ON p.mailbox = m.mailbox AND p.node = $1 AND p.change_id = m.change_id "
              "WHERE m.change_id > $2 ORDER BY m.change_id LIMIT " +
                  std::to_string(kRowsPerFetch),
              {node, std::to_string(after)});
          if (!r) return r.status();
          std::vector<Row> out;
          out.reserve(r->size());
          for (const PgRow& row : *r) {
            Row x;
            x.mailbox = text(row[0]);
            x.state = text(row[1]);
            x.change_id = to_u64(row[2]);
            x.changed_by = text(row[3]);
            if (row[4]) x.sealed_seq = to_u64(row[4]);
            x.done = text(row[5]) == "t";
            out.push_back(std::move(x));
          }
          return out;
        };
    Result<std::vector<Row>> rows = co_await db_.call<std::vector<Row>>(fetch_changes);
    if (!rows) {
      result = rows.status();
      break;
    }
    // Apply in change order: grouped spool writes per target state, then waits.
    std::map<std::pair<MailboxState, std::string>, std::vector<std::string>> writes;
    std::vector<std::string> changed, quiet, sealing;
    for (const Row& row : *rows) {
      states_[row.mailbox] = row.state;
      unknown_.erase(row.mailbox);
      const MailboxState local = spool_state(row.state);
      if (row.state == kReleasing) {
        Release& r = releases_[row.mailbox];
        if (r.change_id != row.change_id) r = Release{row.change_id, row.sealed_seq, row.done};
        sealing.push_back(row.mailbox);
      } else if (releases_.erase(row.mailbox) > 0) {
        dispatcher_.set_release_barrier(row.mailbox, std::nullopt);
      }
      if (spool_.mailbox(row.mailbox).state != local) {
        writes[{local, "cluster (" + row.changed_by + ")"}].push_back(row.mailbox);
        changed.push_back(row.mailbox);
      }
      if (local != MailboxState::kMigrated) quiet.push_back(row.mailbox);
    }
    for (auto& [key, mailboxes] : writes) {
      auto written = co_await spool_.set_state(mailboxes, key.first, key.second);
      if (!written) {
        // The spool refused (disk): apply again at the next sync.
        spdlog::error("cluster: cannot apply states to the spool: {}", written.status().message());
        result = written.status();
        break;
      }
    }
    if (!result.is_ok()) break;
    if (!changed.empty()) dispatcher_.notify(changed);
    if (!quiet.empty()) co_await dispatcher_.quiesce(quiet);
    for (const std::string& m : sealing) {
      Release& r = releases_[m];
      if (!r.sealed_seq) co_await seal(m, r);
      if (r.sealed_seq) dispatcher_.set_release_barrier(m, *r.sealed_seq);
    }
    if (!rows->empty()) {
      applied_ = rows->back().change_id;
      const uint64_t applied = applied_;
      const DbWork<bool> record_applied = [node, applied](PgConnection& db) -> Result<bool> {
        Status s = db.exec("UPDATE holdd_nodes SET applied_change = GREATEST(applied_change, $2) WHERE name = $1",
                           {node, std::to_string(applied)});
        if (!s.is_ok()) return s;
        return true;
      };
      (void)co_await db_.call<bool>(record_applied);
      if (rows->size() == kRowsPerFetch) again_ = true;
    }
    if (Status s = co_await register_unknown(); !s.is_ok()) {
      result = s;
      break;
    }
    co_await finish_releases();
    last_sync_ = std::chrono::steady_clock::now();
  } while (again_ && !stopping_);
  syncing_ = false;
  co_return result;
}

net::awaitable<void> ClusterNode::seal(const std::string& mailbox, Release& release) {
  // Everything this node accepted before it learned of the release is the backlog.
  (void)co_await spool_.sync();
  std::vector<QueueEntry> queue = spool_.queue(mailbox);
  const uint64_t last = queue.empty() ? 0 : queue.back().seq;
  const std::string node = options_.node;
  const uint64_t change = release.change_id;
  const DbWork<std::optional<uint64_t>> seal_backlog = [mailbox, node, change, last](PgConnection& db) -> Result<std::optional<uint64_t>> {
        Result<PgRows> r = db.query(
            "INSERT INTO holdd_release_progress (mailbox, node, change_id, sealed_seq, sealed_at) "
            "SELECT $1, $2, $3, $4, now() WHERE EXISTS (SELECT 1 FROM holdd_mailboxes "
            "  WHERE mailbox = $1 AND state = 'releasing' AND change_id = $3) "
            "ON CONFLICT (mailbox, node) DO UPDATE SET "
            "  sealed_seq = COALESCE(holdd_release_progress.sealed_seq, EXCLUDED.sealed_seq), "
            "  sealed_at = COALESCE(holdd_release_progress.sealed_at, EXCLUDED.sealed_at) "
            "  WHERE holdd_release_progress.change_id = EXCLUDED.change_id "
            "RETURNING sealed_seq",
            {mailbox, node, std::to_string(change), std::to_string(last)});
        if (!r) return r.status();
        if (r->empty()) return std::optional<uint64_t>();  // another change came first
        return std::optional<uint64_t>(to_u64(r->at(0).at(0)));
      };
  Result<std::optional<uint64_t>> sealed = co_await db_.call<std::optional<uint64_t>>(seal_backlog);
  if (!sealed) {
    spdlog::warn("cluster: cannot seal the backlog of {} yet: {}", printable(mailbox), sealed.status().message());
    co_return;
  }
  if (!*sealed) co_return;
  release.sealed_seq = **sealed;
  spdlog::info("cluster: releasing {}: this node's backlog is {} message(s), up to entry {}", printable(mailbox),
               std::count_if(queue.begin(), queue.end(),
                             [&](const QueueEntry& e) { return e.seq <= *release.sealed_seq; }),
               *release.sealed_seq);
}

net::awaitable<void> ClusterNode::finish_releases() {
  const std::string node = options_.node;
  std::vector<std::string> done_mailboxes, done_changes;
  for (auto& [mailbox, release] : releases_) {
    if (release.done) continue;
    if (!release.sealed_seq) {
      co_await seal(mailbox, release);
      if (release.sealed_seq) dispatcher_.set_release_barrier(mailbox, *release.sealed_seq);
      continue;
    }
    if (!dispatcher_.backlog_done(mailbox)) continue;
    done_mailboxes.push_back(mailbox);
    done_changes.push_back(std::to_string(release.change_id));
  }
  if (done_mailboxes.empty()) co_return;
  // One transaction (and one NOTIFY) for every backlog done since the last sync:
  // a batch of 500 releases must not make 500 transactions on every node.
  const std::string mailboxes = text_array(done_mailboxes), changes = text_array(done_changes);
  const DbWork<bool> mark_done = [mailboxes, changes, node](PgConnection& db) -> Result<bool> {
    return in_state_transaction<bool>(db, [&](PgConnection& tx) -> Result<bool> {
      Status s = tx.exec(
          "UPDATE holdd_release_progress p SET done_at = now() "
          "FROM unnest($1::text[], $2::bigint[]) AS x(m, c) "
          "WHERE p.mailbox = x.m AND p.change_id = x.c AND p.node = $3 AND p.done_at IS NULL",
          {mailboxes, changes, node});
      if (s.is_ok()) s = finalize_releases(tx, mailboxes, node);
      if (!s.is_ok()) return s;
      return true;
    });
  };
  Result<bool> done = co_await db_.call<bool>(mark_done);
  if (!done) co_return;  // again at the next sync
  for (const std::string& m : done_mailboxes) {
    releases_[m].done = true;
    spdlog::info("cluster: releasing {}: this node's backlog is done", printable(m));
  }
}

net::awaitable<Status> ClusterNode::register_unknown() {
  if (unknown_.empty()) co_return Status::ok();
  std::vector<std::string> mailboxes, states;
  for (const std::string& m : unknown_) {
    if (states_.contains(m)) continue;
    MailboxRecord record = spool_.mailbox(m);
    // A state an operator set on this node before it joined the cluster is kept;
    // otherwise the configured initial state (the spool files a mailbox it has
    // never seen as held until the database knows it).
    bool changed_here = std::any_of(record.history.begin(), record.history.end(),
                                    [](const StateChange& c) { return c.from != c.to; });
    mailboxes.push_back(m);
    states.emplace_back(to_string(changed_here ? record.state : options_.initial_state));
    if (mailboxes.size() >= 1000) break;
  }
  if (mailboxes.empty()) {
    unknown_.clear();
    co_return Status::ok();
  }
  const std::string node = options_.node;
  const DbWork<bool> insert_unknown = [mailboxes, states, node](PgConnection& db) -> Result<bool> {
    return in_state_transaction<bool>(db, [&](PgConnection& tx) -> Result<bool> {
      Status s = tx.exec(
          "INSERT INTO holdd_mailboxes (mailbox, state, change_id, changed_by) "
          "SELECT m, s, nextval('holdd_change_seq'), 'first mail at ' || $3 "
          "FROM unnest($1::text[], $2::text[]) AS x(m, s) ON CONFLICT (mailbox) DO NOTHING",
          {text_array(mailboxes), text_array(states), node});
      if (!s.is_ok()) return s;
      return true;
    });
  };
  Result<bool> r = co_await db_.call<bool>(insert_unknown);
  if (!r) co_return r.status();
  for (const std::string& m : mailboxes) unknown_.erase(m);
  again_ = true;  // fetch what was just added
  co_return Status::ok();
}

net::awaitable<Result<std::vector<ClusterChange>>> ClusterNode::change_state(std::vector<std::string> mailboxes,
                                                                             std::string to, std::string by) {
  // SPEC: refused, saying why; intake and relaying go on meanwhile.
  auto refused = [](const std::string& why) {
    return Status::temporary(why + ": state changes are refused, nothing changed; mail is still accepted and "
                                   "relayed with the last known states. Try again when the database is back "
                                   "(holdctl status shows it)");
  };
  if (!db_.connected()) co_return refused("PostgreSQL unreachable (" + db_.down_reason() + ")");
  const std::string node = options_.node;
  const std::string initial(to_string(options_.initial_state));
  struct Outcome {
    std::vector<ClusterChange> changes;
    uint64_t change_id = 0;
  };
  const DbWork<Outcome> write_change = [mailboxes, to, by, node, initial](PgConnection& db) {
    return in_state_transaction<Outcome>(db, [&](PgConnection& tx) -> Result<Outcome> {
      const std::string all = text_array(mailboxes);
      Result<PgRows> rows = tx.query(
          "WITH input AS (SELECT DISTINCT unnest($1::text[]) AS mailbox), "
          "cur AS (SELECT i.mailbox, m.state AS from_state FROM input i "
          "        LEFT JOIN holdd_mailboxes m ON m.mailbox = i.mailbox), "
          "ids AS (SELECT mailbox, from_state, nextval('holdd_change_seq') AS change_id FROM cur "
          "        WHERE from_state IS NULL OR (from_state <> $2 "
          "              AND NOT ($2 = 'releasing' AND from_state = 'migrated')) ORDER BY mailbox), "
          "up AS (INSERT INTO holdd_mailboxes (mailbox, state, change_id, changed_by) "
          "       SELECT mailbox, $2, change_id, $3 FROM ids ON CONFLICT (mailbox) DO UPDATE SET "
          "       state = EXCLUDED.state, change_id = EXCLUDED.change_id, changed_at = now(), "
          "       changed_by = EXCLUDED.changed_by), "
          "hist AS (INSERT INTO holdd_history (mailbox, from_state, to_state, by, node) "
          "         SELECT mailbox, COALESCE(from_state, $5), $2, $3, $4 FROM ids) "
          "SELECT mailbox, COALESCE(from_state, ''), change_id FROM ids",
          {all, to, by, node, initial});
      if (!rows) return rows.status();
      Outcome out;
      std::vector<std::string> changed, ids;
      for (const PgRow& row : *rows) {
        out.changes.push_back(ClusterChange{text(row[0]), text(row[1]), to});
        changed.push_back(text(row[0]));
        ids.push_back(text(row[2]));
      }
      if (!changed.empty()) {
        Status s = tx.exec("DELETE FROM holdd_release_progress WHERE mailbox = ANY($1::text[])", {text_array(changed)});
        if (s.is_ok() && to == kReleasing) {
          s = tx.exec(
              "INSERT INTO holdd_release_progress (mailbox, node, change_id) "
              "SELECT x.m, n.name, x.c FROM unnest($1::text[], $2::bigint[]) AS x(m, c) CROSS JOIN holdd_nodes n",
              {text_array(changed), text_array(ids)});
        }
        if (!s.is_ok()) return s;
      }
      Result<PgRows> max = tx.query("SELECT COALESCE(max(change_id), 0) FROM holdd_mailboxes WHERE mailbox = ANY($1::text[])",
                                    {all});
      if (!max) return max.status();
      out.change_id = to_u64(max->at(0).at(0));
      return out;
    });
  };
  Result<Outcome> outcome = co_await db_.call<Outcome>(write_change);
  if (!outcome) {
    co_return db_.connected() ? Status::temporary("PostgreSQL refused the change, nothing changed: " +
                                                  outcome.status().message())
                              : refused(outcome.status().message());
  }
  for (const ClusterChange& c : outcome->changes) {
    spdlog::info("cluster: {} {} -> {} by {} (change recorded in PostgreSQL)", printable(c.mailbox),
                 c.from.empty() ? initial : c.from, c.to, by);
  }
  if (Status s = co_await wait_confirmed(mailboxes, to, outcome->change_id); !s.is_ok()) co_return s;
  co_return std::move(outcome->changes);
}

net::awaitable<Status> ClusterNode::wait_confirmed(const std::vector<std::string>& mailboxes, const std::string& to,
                                                   uint64_t change_id) {
  // This node first: it applies the change at once.
  wake();
  net::steady_timer t(ex_);
  const auto deadline = std::chrono::steady_clock::now() + options_.confirm_timeout;
  const std::string alive = std::to_string(options_.alive_for.count());
  const std::string all = text_array(mailboxes);
  std::vector<std::string> waiting;
  for (;;) {
    const DbWork<std::vector<std::string>> find_unconfirmed = [to, alive, all, change_id](PgConnection& db) -> Result<std::vector<std::string>> {
          Result<PgRows> r =
              to == kReleasing
                  ? db.query(
                        "SELECT DISTINCT p.node FROM holdd_release_progress p "
                        "JOIN holdd_nodes n ON n.name = p.node "
                        "JOIN holdd_mailboxes m ON m.mailbox = p.mailbox AND m.change_id = p.change_id "
                        "WHERE p.mailbox = ANY($1::text[]) AND p.sealed_seq IS NULL "
                        "  AND n.last_seen > now() - $2::integer * interval '1 second' ORDER BY 1",
                        {all, alive})
                  : db.query(
                        "SELECT name FROM holdd_nodes WHERE applied_change < $1 "
                        "  AND last_seen > now() - $2::integer * interval '1 second' ORDER BY 1",
                        {std::to_string(change_id), alive});
          if (!r) return r.status();
          std::vector<std::string> nodes;
          for (const PgRow& row : *r) nodes.push_back(text(row[0]));
          return nodes;
        };
    Result<std::vector<std::string>> pending = co_await db_.call<std::vector<std::string>>(find_unconfirmed);
    if (!pending) co_return pending.status();
    waiting = std::move(*pending);
    if (waiting.empty()) co_return Status::ok();
    if (std::chrono::steady_clock::now() >= deadline) break;
    t.expires_after(kConfirmPoll);
    co_await t.async_wait(net::as_tuple(net::use_awaitable));
  }
  std::string names;
  for (const std::string& n : waiting) names += (names.empty() ? "" : ", ") + n;
  co_return Status::timeout(
      "recorded in PostgreSQL, but node(s) " + names + " did not confirm within " +
      std::to_string(options_.confirm_timeout.count()) + "s (" +
      (to == kReleasing ? "backlog not sealed" : "state not applied: a relay may still be in flight there") +
      "); `holdctl node list` shows them");
}

net::awaitable<bool> ClusterNode::wait_migrated(std::vector<std::string> mailboxes, std::chrono::seconds limit) {
  net::steady_timer t(ex_);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool all = std::all_of(mailboxes.begin(), mailboxes.end(),
                           [this](const std::string& m) { return state_of(m) == "migrated"; });
    if (all) co_return true;
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(net::as_tuple(net::use_awaitable));
  }
}

net::awaitable<Result<std::vector<NodeInfo>>> ClusterNode::nodes() {
  const std::string alive = std::to_string(options_.alive_for.count());
  const DbWork<std::vector<NodeInfo>> list_nodes = [alive](PgConnection& db) -> Result<std::vector<NodeInfo>> {
    Result<PgRows> r = db.query(
        std::string("SELECT name, version, to_char(started_at AT TIME ZONE 'UTC', ") + kIsoUtc +
            "), to_char(last_seen AT TIME ZONE 'UTC', " + kIsoUtc +
            "), extract(epoch FROM now() - last_seen), last_seen > now() - $1::integer * interval '1 second', "
            "applied_change, queued, held FROM holdd_nodes ORDER BY name",
        {alive});
    if (!r) return r.status();
    std::vector<NodeInfo> out;
    for (const PgRow& row : *r) {
      NodeInfo n;
      n.name = text(row[0]);
      n.version = text(row[1]);
      n.started_at = text(row[2]);
      n.last_seen = text(row[3]);
      n.seen_seconds_ago = std::stod(row[4].value_or("0"));
      n.alive = text(row[5]) == "t";
      n.applied_change = to_u64(row[6]);
      n.queued = to_u64(row[7]);
      n.held = to_u64(row[8]);
      out.push_back(std::move(n));
    }
    return out;
  };
  co_return co_await db_.call<std::vector<NodeInfo>>(list_nodes);
}

net::awaitable<Status> ClusterNode::forget(std::string name) {
  if (name == options_.node) {
    co_return Status::invalid("node " + name + " is this node: run `holdctl node forget` on another node, "
                              "after stopping this one for good");
  }
  const std::string alive = std::to_string(options_.alive_for.count());
  const std::string self = options_.node;
  const DbWork<bool> forget_node = [name, alive, self](PgConnection& db) {
    return in_state_transaction<bool>(db, [&](PgConnection& tx) -> Result<bool> {
      Result<PgRows> found = tx.query(
          "SELECT last_seen > now() - $2::integer * interval '1 second', "
          "extract(epoch FROM now() - last_seen)::bigint FROM holdd_nodes WHERE name = $1",
          {name, alive});
      if (!found) return found.status();
      if (found->empty()) {
        return Status::not_found("no node named " + name + ": `holdctl node list` shows the nodes");
      }
      if (text(found->at(0)[0]) == "t") {
        return Status::invalid("node " + name + " was seen " + text(found->at(0)[1]) +
                               "s ago: stop it for good first (forget is for a node that will not come back)");
      }
      Status s = tx.exec("DELETE FROM holdd_nodes WHERE name = $1", {name});
      if (s.is_ok()) s = tx.exec("DELETE FROM holdd_release_progress WHERE node = $1", {name});
      if (s.is_ok()) s = finalize_releases(tx, std::nullopt, self);
      if (!s.is_ok()) return s;
      return true;
    });
  };
  Result<bool> r = co_await db_.call<bool>(forget_node);
  if (!r) co_return r.status();
  spdlog::info("cluster: node {} forgotten", name);
  wake();
  co_return Status::ok();
}

net::awaitable<Result<std::vector<ClusterHistoryEntry>>> ClusterNode::history(std::string mailbox) {
  const DbWork<std::vector<ClusterHistoryEntry>> read_history = [mailbox](PgConnection& db) -> Result<std::vector<ClusterHistoryEntry>> {
        Result<PgRows> r = db.query(std::string("SELECT to_char(at AT TIME ZONE 'UTC', ") + kIsoUtc +
                                        "), COALESCE(from_state, ''), to_state, by, node FROM holdd_history "
                                        "WHERE mailbox = $1 ORDER BY id",
                                    {mailbox});
        if (!r) return r.status();
        std::vector<ClusterHistoryEntry> out;
        for (const PgRow& row : *r) {
          out.push_back({text(row[0]), text(row[1]), text(row[2]), text(row[3]), text(row[4])});
        }
        return out;
      };
  co_return co_await db_.call<std::vector<ClusterHistoryEntry>>(read_history);
}

net::awaitable<Result<std::vector<std::string>>> ClusterNode::waiting_nodes(std::string mailbox) {
  const DbWork<std::vector<std::string>> find_waiting = [mailbox](PgConnection& db) -> Result<std::vector<std::string>> {
        Result<PgRows> r = db.query(
            "SELECT p.node FROM holdd_release_progress p "
            "JOIN holdd_mailboxes m ON m.mailbox = p.mailbox AND m.change_id = p.change_id "
            "WHERE p.mailbox = $1 AND m.state = 'releasing' AND p.done_at IS NULL ORDER BY 1",
            {mailbox});
        if (!r) return r.status();
        std::vector<std::string> out;
        for (const PgRow& row : *r) out.push_back(text(row[0]));
        return out;
      };
  co_return co_await db_.call<std::vector<std::string>>(find_waiting);
}

}  // namespace holdd::cluster
