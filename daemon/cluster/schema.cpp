#include "holdd/cluster/schema.h"

#include <string>

namespace holdd::cluster {

namespace {

struct Migration {
  int version;
  const char* sql;
};

// Append only: a released migration is never edited (nodes that applied it would
// disagree with nodes that apply the edited one).
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE holdd_nodes (
  name            text PRIMARY KEY,
  version         text NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT now(),
  last_seen       timestamptz NOT NULL DEFAULT now(),
  applied_change  bigint NOT NULL DEFAULT 0,   -- every state change up to this one is applied here
  queued          bigint NOT NULL DEFAULT 0,
  held            bigint NOT NULL DEFAULT 0
);
CREATE SEQUENCE holdd_change_seq;
CREATE TABLE holdd_mailboxes (
  mailbox     text PRIMARY KEY,
  state       text NOT NULL CHECK (state IN ('old', 'held', 'releasing', 'migrated')),
  change_id   bigint NOT NULL,                 -- holdd_change_seq at its last change
  changed_at  timestamptz NOT NULL DEFAULT now(),
  changed_by  text NOT NULL DEFAULT ''
);
CREATE INDEX holdd_mailboxes_change ON holdd_mailboxes (change_id);
CREATE TABLE holdd_history (
  id          bigserial PRIMARY KEY,
  mailbox     text NOT NULL,
  from_state  text,
  to_state    text NOT NULL,
  at          timestamptz NOT NULL DEFAULT now(),
  by          text NOT NULL DEFAULT '',
  node        text NOT NULL DEFAULT ''
);
CREATE INDEX holdd_history_mailbox ON holdd_history (mailbox, id);
-- One row per (releasing mailbox, node): the node's backlog for that release.
CREATE TABLE holdd_release_progress (
  mailbox     text NOT NULL,
  node        text NOT NULL,
  change_id   bigint NOT NULL,                 -- the release (holdd_mailboxes.change_id)
  sealed_seq  bigint,                          -- the node's last backlog entry; NULL: not sealed
  sealed_at   timestamptz,
  done_at     timestamptz,                     -- backlog delivered or parked
  PRIMARY KEY (mailbox, node)
);
)sql"},
};

}  // namespace

int schema_version() { return kMigrations[std::size(kMigrations) - 1].version; }

Status migrate_schema(PgConnection& db, int* applied) {
  if (applied) *applied = 0;
  // A session lock, so that the bookkeeping table itself is created once.
  if (Status s = db.exec("SELECT pg_advisory_lock(7264114)"); !s.is_ok()) return s;
  auto unlock = [&db] { (void)db.exec("SELECT pg_advisory_unlock(7264114)"); };
  Status s = db.exec(
      "CREATE TABLE IF NOT EXISTS holdd_schema (version integer PRIMARY KEY, "
      "applied_at timestamptz NOT NULL DEFAULT now())");
  if (!s.is_ok()) {
    unlock();
    return s;
  }
  Result<PgRows> current = db.query("SELECT coalesce(max(version), 0) FROM holdd_schema");
  if (!current) {
    unlock();
    return current.status();
  }
  const int have = std::stoi(current->at(0).at(0).value_or("0"));
  if (have > schema_version()) {
    unlock();
    return Status::invalid("the holdd schema in PostgreSQL is version " + std::to_string(have) +
                           ", newer than this holdd knows (" + std::to_string(schema_version()) +
                           "): upgrade this node");
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= have) continue;
    Status step = db.exec("BEGIN");
    if (step.is_ok()) step = db.run_script(m.sql);
    if (step.is_ok()) step = db.exec("INSERT INTO holdd_schema (version) VALUES ($1)", {std::to_string(m.version)});
    if (step.is_ok()) step = db.exec("COMMIT");
    if (!step.is_ok()) {
      (void)db.exec("ROLLBACK");
      unlock();
      return Status::temporary("schema migration " + std::to_string(m.version) + ": " + step.message());
    }
    if (applied) ++*applied;
  }
  unlock();
  return Status::ok();
}

}  // namespace holdd::cluster
