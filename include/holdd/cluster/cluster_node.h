#pragma once
// ClusterNode: this holdd as one node of several sharing mailbox states in
// PostgreSQL (SPEC "Several nodes", docs/cluster.md). Absent [cluster], nothing
// of this runs.
//
// Who writes what:
//  - a state change (`holdctl lock|release|revert` on any node) is one PostgreSQL
//    transaction (holdd_mailboxes, holdd_history, NOTIFY) before anything else;
//  - every node applies the changes to its own spool and relay, in change order,
//    within a second (NOTIFY wakes it; it polls every second anyway), and records
//    in holdd_nodes the last change it applied (and every second that it is alive,
//    with its queue sizes);
//  - `releasing`: each node seals its backlog (the last queue entry it holds for
//    the mailbox when it applies the release) in holdd_release_progress, replays
//    up to that entry to the new server while later mail waits, and marks its row
//    done; the node that marks the last row done makes the mailbox `migrated` in
//    the same transaction.
// While the database cannot be reached, the node keeps the states it last
// applied: intake and relaying go on, state changes are refused.
//
// Runs on the io_context's thread, except ClusterDatabase's own thread.
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "holdd/base/mailbox_state.h"
#include "holdd/base/status.h"
#include "holdd/cluster/cluster_database.h"
#include "holdd/relay/dispatcher.h"
#include "holdd/spool/spool.h"

namespace holdd::cluster {

// The states in the database: the three of a single node, and `releasing`.
inline constexpr std::string_view kReleasing = "releasing";
inline constexpr std::string_view kSharedStates[] = {"old", "held", "releasing", "migrated"};

// Where `state` is in kSharedStates (an unknown name counts as held).
constexpr size_t shared_state_index(std::string_view state) {
  for (size_t i = 0; i < std::size(kSharedStates); ++i) {
    if (kSharedStates[i] == state) return i;
  }
  return 1;
}
// The spool state that carries a shared one: `releasing` is held in the spool
// (the dispatcher's release barrier lets the backlog through).
constexpr MailboxState spool_state(std::string_view state) {
  if (state == "old") return MailboxState::kOld;
  if (state == "migrated") return MailboxState::kMigrated;
  return MailboxState::kHeld;
}

struct ClusterOptions {
  std::string conninfo;
  std::string node;                                 // this node's name
  std::string version;                              // holdd's, shown by `node list`
  MailboxState initial_state = MailboxState::kOld;  // [directory] initial_state
  // A node not seen for this long is not alive: `lock` and `release` stop
  // waiting for it (its mailboxes stay `releasing` until it is back or forgotten).
  std::chrono::seconds alive_for{5};
  // How long `lock`, `revert` and `release` wait for the live nodes to confirm.
  std::chrono::seconds confirm_timeout{30};
};

struct NodeInfo {
  std::string name;
  std::string version;
  std::string started_at;   // ISO 8601, UTC
  std::string last_seen;    // ISO 8601, UTC
  double seen_seconds_ago = 0;
  bool alive = false;
  uint64_t applied_change = 0;
  uint64_t queued = 0;
  uint64_t held = 0;
};

struct ClusterChange {
  std::string mailbox;
  std::string from;  // "" for a mailbox the database did not know
  std::string to;
};

struct ClusterHistoryEntry {
  std::string at;  // ISO 8601, UTC
  std::string from, to, by, node;
};

class ClusterNode {
 public:
  ClusterNode(net::any_io_executor ex, ClusterOptions options, Spool& spool, Dispatcher& dispatcher);
  ~ClusterNode();

  // Before intake starts: connects, creates or upgrades the schema, registers the
  // node and applies every state (SPEC: "At start a node reads the states from
  // PostgreSQL before it accepts mail"). If the database cannot be reached within
  // `wait`, logs it and returns: the node runs with the states in its spool and
  // catches up when the database is back.
  net::awaitable<void> start(std::chrono::seconds wait);
  net::awaitable<void> stop();

  // The spool committed mail for these mailboxes: the database learns of the ones
  // it does not know (in initial_state), at the next sync.
  void seen(const std::vector<std::string>& mailboxes);

  // ---- holdctl (any node) ----
  // `to` is "old", "held" or "releasing" (what `release` asks for). The change is
  // committed in PostgreSQL, applied here, and then waited for: every live node
  // applied it (lock, revert: nothing in flight for these mailboxes anywhere), or
  // sealed its backlog (release). A node that does not confirm within
  // confirm_timeout makes it an error naming the node (the change stays).
  net::awaitable<Result<std::vector<ClusterChange>>> change_state(std::vector<std::string> mailboxes,
                                                                  std::string to, std::string by);
  // `release --wait`: returns once these mailboxes are `migrated` everywhere (or
  // `limit` passed: false).
  net::awaitable<bool> wait_migrated(std::vector<std::string> mailboxes, std::chrono::seconds limit);
  net::awaitable<Result<std::vector<NodeInfo>>> nodes();
  net::awaitable<Status> forget(std::string node);
  net::awaitable<Result<std::vector<ClusterHistoryEntry>>> history(std::string mailbox);
  // The nodes whose backlog of a releasing mailbox is not done yet.
  net::awaitable<Result<std::vector<std::string>>> waiting_nodes(std::string mailbox);

  // ---- what this node knows (as last applied) ----
  bool connected() const { return db_.connected(); }
  std::string down_reason() const { return db_.down_reason(); }
  const std::string& node_name() const { return options_.node; }
  // The database's state of `mailbox` as last applied here ("" if unknown).
  std::string state_of(const std::string& mailbox) const;
  const std::unordered_map<std::string, std::string>& states() const { return states_; }
  uint64_t applied_change() const { return applied_; }
  // Releases this node still replays its backlog for.
  size_t releasing_here() const;
  // Seconds since the last successful sync with the database (a large value: it
  // has been away).
  double seconds_since_sync() const;

 private:
  struct Row;
  struct Release {
    uint64_t change_id = 0;
    std::optional<uint64_t> sealed_seq;  // nullopt: not sealed yet (the database was away)
    bool done = false;
  };

  void wake();
  net::awaitable<void> loop();
  net::awaitable<void> heartbeat_loop();
  net::awaitable<Status> sync_once();
  net::awaitable<void> apply(const Row& row);
  net::awaitable<void> seal(const std::string& mailbox, Release& release);
  net::awaitable<void> finish_releases();
  net::awaitable<Status> register_unknown();
  net::awaitable<Status> wait_confirmed(const std::vector<std::string>& mailboxes, const std::string& to,
                                        uint64_t change_id);

  net::any_io_executor ex_;
  ClusterOptions options_;
  Spool& spool_;
  Dispatcher& dispatcher_;
  ClusterDatabase db_;
  net::steady_timer timer_;  // the sync loop's
  net::steady_timer beat_;   // the heartbeat's
  bool stopping_ = false;
  bool looping_ = false;
  bool heartbeating_ = false;
  bool syncing_ = false;
  bool again_ = false;
  uint64_t applied_ = 0;
  std::chrono::steady_clock::time_point last_sync_{};
  std::unordered_map<std::string, std::string> states_;  // mailbox -> database state
  std::map<std::string, Release> releases_;              // releasing mailboxes, this node's part
  std::set<std::string> unknown_;                        // seen here, not yet in the database
};

}  // namespace holdd::cluster
