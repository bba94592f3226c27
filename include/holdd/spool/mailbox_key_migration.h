#pragma once
// Mailbox keys in the spool follow [directory] local_part_case. A spool written by
// a holdd from before that key, or run with local_part_case = "exact", files mail
// for Bob@example.test and bob@example.test under two keys; under the default
// "insensitive" rule both are bob@example.test's mail, held and released with it.
// So when the Spool opens in insensitive mode it folds, once, every mailbox record
// and queue key whose local part has ASCII capitals, in one LMDB write transaction:
//   - queue entries keep their seq (global and increasing), so the entries of two
//     keys that differ only by case merge in arrival order by themselves; a message
//     queued under both (RCPT Bob@ and bob@ in one transaction) keeps one entry,
//     the first, as intake under the new rule would have queued it;
//   - two records that merge keep held if either is held (held never loses mail:
//     nothing of the mailbox leaves before release), otherwise the state of the
//     record changed last; their histories are joined in time order and their
//     counters added; each merge is logged.
// The info table then records "mailbox_keys.case" = "insensitive", so later opens
// skip the scan (an empty spool is not marked: nothing to scan, nothing written).
// Opening in exact mode needs no rewrite (folded keys are exact keys too) but
// removes the marker, so a later insensitive open folds again whatever exact mode
// stored meanwhile.
//
// REQUIRES: called from Spool::open after journal recovery (journal records carry
// the keys of the holdd that wrote them) and before anything else writes.
#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <string>

#include "holdd/base/status.h"

namespace holdd {

// The spool tables the migration reads and rewrites.
struct MailboxKeyTables {
  MDB_dbi mailbox = 0;  // key -> MailboxRecord
  MDB_dbi queue = 0;    // mailbox + '\0' + u64 seq -> QueueEntry
  MDB_dbi meta = 0;     // message id -> MessageMeta (refs drop with a duplicate entry)
  MDB_dbi info = 0;     // the "mailbox_keys.case" marker
};

struct MailboxKeyMigration {
  bool ran = false;                 // false: marked already, empty, or exact mode
  uint64_t mailboxes_renamed = 0;   // records moved to a key nobody had
  uint64_t mailboxes_merged = 0;    // records folded into another record
  uint64_t entries_moved = 0;       // queue entries moved to a folded key
  uint64_t duplicates_dropped = 0;  // entries of a message the folded mailbox already had
};

// The info-table key of the marker.
inline constexpr char kMailboxKeysCaseKey[] = "mailbox_keys.case";

// Brings the spool's keys in line with the rule (see above). `grow_map` is called
// when the transaction does not fit in the map, and the migration runs again.
Result<MailboxKeyMigration> migrate_mailbox_keys(MDB_env* env, const MailboxKeyTables& tables,
                                                 bool fold_local_part_case,
                                                 const std::function<Status()>& grow_map);

}  // namespace holdd
