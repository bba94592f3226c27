#pragma once
// A DaemonSnapshot is the one computation of "how is the daemon doing" that
// `holdctl status`, `holdctl check` and /metrics all report, so the three can never
// disagree about what counts as held, parked, deferred or late.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "holdd/base/mailbox_state.h"
#include "holdd/control/daemon_view.h"
#include "holdd/relay/dispatcher.h"
#include "holdd/smtp/intake_stats.h"
#include "holdd/spool/records.h"
#include "holdd/spool/spool.h"

namespace holdd {

struct DaemonSnapshot {
  int64_t now_us = 0;
  int64_t started_us = 0;
  // Mailboxes per state (index: MailboxState), counting every listed mailbox and
  // every mailbox with a spool record, as `holdctl list` shows them.
  std::array<uint64_t, 3> mailboxes{};
  QueueTotals queued;  // every queue entry; oldest_arrival_us: the oldest of all
  QueueTotals held;    // entries of mailboxes in state held
  uint64_t parked = 0;    // entries parked now
  uint64_t deferred = 0;  // entries tried at least once, not parked
  // Deliverable (state old or migrated), not parked, and waiting longer than
  // [delivery] warn_after on their warn clock, which starts at
  // max(arrival, deliverable_since): held time does not count (SPEC).
  uint64_t late = 0;
  int64_t oldest_late_clock_us = 0;  // 0: none late
  uint64_t old_mailboxes_with_mail = 0;  // state old with queued entries
  uint64_t queued_for_old = 0;           // entries of those mailboxes
  std::array<int64_t, 2> last_relay_us{};  // index: UpstreamKind; 0: never
  uint64_t forwarded_by_old = 0;            // mail the old server forwarded, in all
  int64_t last_forwarded_by_old_us = 0;     // 0: never
  SpoolStats spool;
  uint64_t min_free_disk = 0;
  std::chrono::seconds warn_after{0};
  RelayCounters relay;
  uint64_t in_flight = 0;
  uint64_t removal_pending = 0;  // accepted by an upstream, removal not committed yet
  bool paused = false;
  IntakeStats intake;
  // [cluster] only: this node's view of the shared states (holdd_cluster_*).
  struct Cluster {
    bool enabled = false;
    std::string node;
    bool connected = false;
    uint64_t applied_change = 0;
    double seconds_since_sync = -1;  // -1: never synced
    uint64_t releasing_here = 0;     // releases whose backlog this node still replays
    std::array<uint64_t, 4> mailboxes{};  // per cluster::kSharedStates, as `holdctl list` shows them
  } cluster;

  uint64_t mailboxes_in(MailboxState s) const { return mailboxes[static_cast<size_t>(s)]; }
  // Whole seconds from `us` to now; 0 for a time in the future.
  int64_t age_seconds(int64_t us) const { return us <= 0 || us >= now_us ? 0 : (now_us - us) / 1000000; }
};

// Every mailbox the operator may name or see: listed in the directory, or known to
// the spool (a record exists once mail arrived or the state was set). A listed
// mailbox without a record is in the spool's initial_state. Sorted by key.
std::map<std::string, MailboxRecord> known_mailboxes(const DaemonView& view);

// Reads the spool, dispatcher and intake counters: O(mailboxes) (the spool keeps
// per-mailbox counters in memory), never a walk over the queue entries, so a
// scrape every second with a backlog of 200,000 held messages costs little.
// REQUIRES: on the io_context's thread (the dispatcher's rule).
DaemonSnapshot take_snapshot(const DaemonView& view);

}  // namespace holdd
