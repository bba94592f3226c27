#pragma once
// The Dispatcher moves queued mail from the spool to the upstreams.
//
// Per mailbox strictly first in, first out: the head entry (first not parked) is
// the only one that may be in flight; the next is handed over only after the head
// was accepted or parked. An accepted entry's removal is committed while the next
// one goes (PendingRemovals: "delivered, removal pending"); until it is durable the
// entry is skipped, never sent again while holdd runs; after a crash, the last few
// accepted entries may go again, in order. Mailboxes in `old` go to [upstream.old],
// `migrated` to [upstream.new], `held` nowhere. Up to [delivery] concurrency
// mailboxes are served at once, round robin among those that are due, so a big
// release cannot starve the others. 4xx and connection failures back off
// exponentially between retry_min and retry_max, keeping the mailbox's order.
//
// Runs on the io_context's thread; every member must be called there.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/config/config.h"
#include "holdd/spool/spool.h"

namespace holdd {

namespace net = boost::asio;

struct RelayCounters {
  uint64_t delivered_old = 0, delivered_new = 0;
  uint64_t bytes_old = 0, bytes_new = 0;
  uint64_t deferred = 0;
  uint64_t parked = 0;
};

// What `release --wait` reports for its mailboxes once nothing deliverable is left.
struct SettleReport {
  uint64_t delivered = 0;  // entries accepted by the upstream since the wait began
  uint64_t parked = 0;     // entries parked (now or before)
  uint64_t remaining = 0;  // entries neither delivered nor parked (only if the wait was cut)
};

struct MailboxActivity {
  bool in_flight = false;
  size_t removal_pending = 0;   // accepted by the upstream, removal not committed yet
  int64_t next_attempt_us = 0;  // when the head may be tried again; 0: now
};

class Dispatcher {
 public:
  Dispatcher(net::any_io_executor ex, Spool& spool, const Config& config);
  ~Dispatcher();

  void start();                   // loads mailboxes with queued mail, begins relaying
  // No new deliveries; waits up to `grace` for those in flight, then closes their
  // connections (an interrupted delivery stays queued: at-least-once).
  net::awaitable<void> stop(std::chrono::seconds grace);
  void reconfigure(const Config& config);  // upstreams, concurrency, retry times

  // Several nodes (cluster/): while `mailbox` is `releasing`, it stays `held` in
  // the spool and its entries up to `last_seq` (the backlog sealed when this node
  // learned of the release) go to the new server in order; later ones wait until
  // the state becomes `migrated`. nullopt removes the barrier.
  void set_release_barrier(const std::string& mailbox, std::optional<uint64_t> last_seq);
  // True once nothing up to the barrier is left to send (delivered durably, or
  // parked): this node's part of the release is done.
  bool backlog_done(const std::string& mailbox) const;

  // New mail was committed for these mailboxes, or their state changed.
  void notify(const std::vector<std::string>& mailboxes);
  // Returns once no delivery for these mailboxes is in flight, the removals of
  // what was accepted are durable, and none will start until their state allows
  // it again (`lock`: call after set_state(held)).
  net::awaitable<void> quiesce(std::vector<std::string> mailboxes);
  // `release --wait`: returns once none of these mailboxes has an entry that is
  // neither delivered nor parked (or `limit` passed).
  net::awaitable<SettleReport> settle(std::vector<std::string> mailboxes,
                                      std::chrono::seconds limit);
  // `release --rate N`: at most N deliveries a second across these mailboxes until
  // their backlog is gone (0: no cap).
  void limit_rate(const std::vector<std::string>& mailboxes, double per_second);

  void pause();
  void resume();
  bool paused() const;

  MailboxActivity activity(const std::string& mailbox) const;
  RelayCounters counters() const;
  uint64_t in_flight() const;
  // Entries accepted by an upstream whose removal is not committed yet: still in
  // the spool's totals, not yet in counters().
  uint64_t removals_pending() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace holdd
