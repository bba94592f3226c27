#pragma once
// The PostgreSQL schema of a holdd cluster, created and upgraded by holdd itself
// at start: versioned migrations (daemon/cluster/schema.cpp), each applied once,
// in order, in its own transaction, under an advisory lock so that several nodes
// starting at once apply each exactly once. A database with a newer version than
// this holdd knows is refused (an older node must not write to a newer schema).
#include "holdd/base/status.h"
#include "holdd/cluster/pg_connection.h"

namespace holdd::cluster {

// The version this build creates and understands.
int schema_version();

// Brings the database to schema_version(); returns how many migrations it applied
// in `applied` (0: already current).
Status migrate_schema(PgConnection& db, int* applied = nullptr);

// The advisory lock every transaction that changes a mailbox state takes first:
// change ids are then handed out in commit order, so a node that has applied
// change N has seen every change up to N.
inline constexpr const char* kStateLockSql = "SELECT pg_advisory_xact_lock(7264115)";

}  // namespace holdd::cluster
