#pragma once
// What the spool stores, as plain values. Serialised as CBOR in LMDB and in the
// intake journal (records.cpp): binary-safe (text fields are bytes, whatever the
// network sent) and extensible without a migration.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "holdd/base/mailbox_state.h"

namespace holdd {

enum class UpstreamKind { kOld, kNew };
inline const char* to_string(UpstreamKind u) { return u == UpstreamKind::kOld ? "old" : "new"; }

// One recipient of an incoming message, after alias resolution: one per mailbox.
struct QueuedRecipient {
  std::string mailbox;  // canonical key (Address::mailbox_key): domain lower-cased, and
                        // the local part too unless local_part_case = "exact"
  std::string rcpt;     // the address to relay to (as the client wrote it when it
                        // names the mailbox itself; the mailbox key after an alias)
  std::string notify;   // DSN NOTIFY= value, "" if none (RFC 3461)
  std::string orcpt;    // DSN ORCPT= value (xtext as received), "" if none
};

// The envelope and facts of a stored message; the body is stored once beside it.
struct MessageMeta {
  std::string id;          // queue ID: 14 upper-case hex digits, unique in the spool
  int64_t arrival_us = 0;  // when holdd committed it (unix micros)
  std::string sender;      // reverse-path without brackets; "" for the null sender <>
  uint64_t size = 0;           // bytes stored: holdd's headers + what the client sent
  uint64_t received_size = 0;  // bytes the client sent (after dot-unstuffing, CRLF lines)
  bool eight_bit = false;  // BODY=8BITMIME (or 8-bit octets seen in the content)
  bool smtputf8 = false;   // SMTPUTF8 given on MAIL
  std::string dsn_ret;     // RET= (FULL or HDRS), "" if none
  std::string dsn_envid;   // ENVID= (xtext as received), "" if none
  std::string client;      // "helo-name [address]" for logs and show
  uint32_t refs = 0;       // queue entries that still point at this message
  bool forwarded_by_old = false;  // its client is in [upstream.old] forwarders
};

// One (mailbox, message) pair waiting for delivery. The key orders a mailbox's
// entries by arrival: mailbox + '\0' + big-endian seq, seq growing with each commit.
struct QueueEntry {
  std::string mailbox;
  uint64_t seq = 0;
  std::string id;            // MessageMeta::id
  QueuedRecipient recipient;
  std::string sender;        // copied from the meta, so listings need no second read
  uint64_t size = 0;         // MessageMeta::received_size: what the sender sent
  int64_t arrival_us = 0;
  uint32_t attempts = 0;
  int64_t last_attempt_us = 0;
  int64_t next_attempt_us = 0;  // 0: as soon as the mailbox is deliverable
  std::string last_error;       // last upstream reply or connection error
  bool parked = false;          // 5xx from an upstream: kept, skipped, `retry` requeues
  // Forwarded by the old server: never relayed back to it (a loop; parked instead).
  bool forwarded_by_old = false;
};

struct StateChange {
  int64_t at_us = 0;
  MailboxState from = MailboxState::kOld;
  MailboxState to = MailboxState::kOld;
  std::string by;  // who asked: "holdctl (uid 0)", "intake (first mail)", ...
  // A line of text (holdctl note, migrate's copy attempts). A note changes no
  // state: from == to.
  std::string note;
};

struct MailboxRecord {
  std::string mailbox;
  MailboxState state = MailboxState::kOld;
  std::vector<StateChange> history;
  // When the mailbox last became deliverable (old or migrated): the warn_after clock
  // of a queued message starts at max(arrival, this) (SPEC: on release, not arrival).
  int64_t deliverable_since_us = 0;
  int64_t last_delivery_us = 0;
  std::string last_delivery;  // "new: 250 2.0.0 Ok queued as ..."
  int64_t last_error_us = 0;
  std::string last_error;
  uint64_t delivered = 0;
  uint64_t parked = 0;  // messages ever parked
  uint64_t forwarded_by_old = 0;   // messages the old server forwarded for it
  int64_t last_forwarded_us = 0;   // when the last of them arrived; 0: never
};

// Running totals of what is queued, kept in memory by the Spool (QueueCounters:
// rebuilt by a scan at open, updated at every commit) so status and metrics cost
// no scan.
struct QueueTotals {
  uint64_t messages = 0;  // queue entries
  uint64_t bytes = 0;
  uint64_t parked = 0;
  int64_t oldest_arrival_us = 0;  // of the first entry; 0 if empty
  uint64_t deferred = 0;          // entries tried at least once, not parked
};

std::string encode(const MessageMeta& m);
std::string encode(const QueueEntry& e);
std::string encode(const MailboxRecord& r);
bool decode(std::string_view bytes, MessageMeta& out);
bool decode(std::string_view bytes, QueueEntry& out);
bool decode(std::string_view bytes, MailboxRecord& out);

// A message put as the intake journal records it: the meta and queue entries exactly
// as applied (arrival time and sequence numbers included), so that applying it again
// gives the same state. The content travels beside it (JournalRecord::bulk).
struct StoredPut {
  MessageMeta meta;
  std::vector<QueueEntry> entries;
};

// The journal record's head for a put. False when `head` is not one.
std::string encode_put(const StoredPut& p);
bool decode_put(std::string_view head, StoredPut& p);

}  // namespace holdd
