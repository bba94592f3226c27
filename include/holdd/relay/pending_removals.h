#pragma once
// PendingRemovals: queue entries that an upstream accepted and whose removal from
// the spool is not durable yet ("delivered, removal pending"), per mailbox.
//
// The dispatcher sends a mailbox's next message as soon as the upstream accepted
// the previous one: the upstream's 2xx is what the order depends on, not holdd's
// commit. The removal is committed meanwhile, here, in the background. Until it
// is, the spool still lists the entry at the mailbox's head, and the dispatcher
// skips the seqs listed here: an accepted entry is never sent twice while holdd
// runs. A crash before the commit sends it again after the restart, with the
// others still pending, in order (at-least-once, SPEC "Relay and replay").
//
// Per mailbox, one spool write at a time, in acceptance order: the entries
// accepted while a write commits go together in the next one (all or none). So a
// durable removal never overtakes an earlier one, and after a crash only the last
// few accepted messages go again, never one from before a message that stays
// removed. A write that fails is retried (the removal, never the delivery: issue
// 12), with a pause doubling from 100 ms to 5 s, until it succeeds or stop().
//
// Runs on the io_context's thread; every member must be called there.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "holdd/spool/spool.h"

namespace holdd {

namespace net = boost::asio;

class PendingRemovals {
 public:
  // `on_removed` gets each mailbox's batch once its removal is durable.
  using Removed = std::function<void(const std::string& mailbox,
                                     const std::vector<AcceptedDelivery>& removed)>;
  PendingRemovals(net::any_io_executor ex, Spool& spool, Removed on_removed);

  // The upstream accepted `d.entry`: remove it from the spool, in the background.
  void add(AcceptedDelivery d);

  // The seqs of `mailbox`'s entries that are accepted and not yet removed.
  const std::set<uint64_t>& of(const std::string& mailbox) const;
  // True while `mailbox` must not send more: `window` entries wait (`[delivery]
  // pipeline`: a crash resends at most that many of a mailbox's messages, so a
  // slow disk never lets a replay run far ahead of what would survive it), or its
  // last removal write failed (a failing disk stops the mailbox, as before).
  bool holds_back(const std::string& mailbox, size_t window) const;
  size_t count(const std::string& mailbox) const;  // entries pending for `mailbox`
  uint64_t count() const;                          // in all
  bool idle() const { return writers_ == 0; }      // no write running or waiting to retry

  // Failed writes are not retried any more: each waiting batch is tried once
  // (entries added from now on too), and what fails stays queued in the spool and
  // goes again after the restart. Wait for idle() before destroying.
  void stop();

 private:
  struct Lane {
    std::vector<AcceptedDelivery> waiting;   // accepted, not yet in a write
    std::vector<AcceptedDelivery> writing;   // in the write now (or its retries)
    std::set<uint64_t> seqs;                 // of both
    bool busy = false;                       // a writer coroutine runs
    bool failing = false;                    // its last try failed
  };

  void spawn_writer(const std::string& mailbox);
  // Writes the mailbox's waiting entries, batch after batch, until none waits.
  net::awaitable<void> write_all(std::string mailbox);
  // One batch, retried until it is durable or stop().
  net::awaitable<Status> write_batch(Lane& lane);
  void finished(const std::string& mailbox, std::exception_ptr error);

  net::any_io_executor ex_;
  Spool& spool_;
  Removed on_removed_;
  std::unordered_map<std::string, Lane> lanes_;  // node-based: a Lane& survives inserts
  size_t writers_ = 0;
  uint64_t pending_ = 0;
  bool stopping_ = false;
};

}  // namespace holdd
