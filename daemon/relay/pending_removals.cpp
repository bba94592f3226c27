// PendingRemovals: the background removal of accepted entries, one spool write at
// a time per mailbox (pending_removals.h).
#include "holdd/relay/pending_removals.h"

#include <algorithm>
#include <iterator>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

namespace holdd {

namespace {
constexpr std::chrono::milliseconds kFirstPause{100};
constexpr std::chrono::seconds kMaxPause{5};
constexpr std::chrono::seconds kRestartAfterBug{1};
}  // namespace

PendingRemovals::PendingRemovals(net::any_io_executor ex, Spool& spool, Removed on_removed)
    : ex_(std::move(ex)), spool_(spool), on_removed_(std::move(on_removed)) {}

void PendingRemovals::add(AcceptedDelivery d) {
  const std::string mailbox = d.entry.mailbox;
  Lane& lane = lanes_[mailbox];
  if (!lane.seqs.insert(d.entry.seq).second) return;  // already pending
  ++pending_;
  lane.waiting.push_back(std::move(d));
  // Also while stopping: a delivery that ends in the grace period is removed too.
  if (!lane.busy) spawn_writer(mailbox);
}

const std::set<uint64_t>& PendingRemovals::of(const std::string& mailbox) const {
  static const std::set<uint64_t> kNone;
  auto it = lanes_.find(mailbox);
  return it == lanes_.end() ? kNone : it->second.seqs;
}

bool PendingRemovals::holds_back(const std::string& mailbox, size_t window) const {
  auto it = lanes_.find(mailbox);
  if (it == lanes_.end()) return false;
  return it->second.failing || it->second.seqs.size() >= window;
}

size_t PendingRemovals::count(const std::string& mailbox) const { return of(mailbox).size(); }

uint64_t PendingRemovals::count() const { return pending_; }

void PendingRemovals::stop() { stopping_ = true; }

// Not `detached`: an exception escaping the writer (a bug) is logged, and the
// mailbox's entries are written again a second later; until then they stay
// pending, so the mailbox sends nothing it already sent.
void PendingRemovals::spawn_writer(const std::string& mailbox) {
  lanes_[mailbox].busy = true;
  ++writers_;
  net::co_spawn(ex_, write_all(mailbox),
                [this, mailbox](std::exception_ptr e) { finished(mailbox, e); });
}

void PendingRemovals::finished(const std::string& mailbox, std::exception_ptr error) {
  --writers_;
  Lane& lane = lanes_[mailbox];
  lane.busy = false;
  if (!error) {
    if (lane.seqs.empty()) lanes_.erase(mailbox);
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::critical("relay: removing delivered entries of {} failed ({}); trying again in 1s",
                     mailbox, e.what());
  } catch (...) {
    spdlog::critical("relay: removing delivered entries of {} failed; trying again in 1s", mailbox);
  }
  // The batch goes first again, before what was accepted after it.
  lane.failing = true;
  lane.writing.insert(lane.writing.end(), std::make_move_iterator(lane.waiting.begin()),
                      std::make_move_iterator(lane.waiting.end()));
  lane.waiting = std::move(lane.writing);
  lane.writing.clear();
  if (stopping_) return;
  lane.busy = true;
  ++writers_;
  auto timer = std::make_shared<net::steady_timer>(ex_, kRestartAfterBug);
  timer->async_wait([this, mailbox, timer](boost::system::error_code) {
    --writers_;
    lanes_[mailbox].busy = false;
    if (!stopping_) spawn_writer(mailbox);
  });
}

net::awaitable<void> PendingRemovals::write_all(std::string mailbox) {
  Lane& lane = lanes_[mailbox];
  // Each batch is tried at least once, also after stop(): a clean stop must not
  // send accepted messages again after the restart.
  while (!lane.waiting.empty()) {
    lane.writing = std::move(lane.waiting);
    lane.waiting.clear();
    Status s = co_await write_batch(lane);
    if (!s.is_ok()) co_return;  // stopping: the entries stay queued (and pending)
    for (const AcceptedDelivery& d : lane.writing) lane.seqs.erase(d.entry.seq);
    pending_ -= lane.writing.size();
    std::vector<AcceptedDelivery> removed = std::move(lane.writing);
    lane.writing.clear();
    on_removed_(mailbox, removed);
  }
}

net::awaitable<Status> PendingRemovals::write_batch(Lane& lane) {
  Status s = co_await spool_.delivered(lane.writing);
  auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstPause);
  net::steady_timer timer(ex_);
  for (int tries = 1; !s.is_ok() && !stopping_; ++tries) {
    lane.failing = true;
    if (tries == 1 || tries % 20 == 0) {
      spdlog::error("{}: accepted by the upstream but not removed from the spool ({}); retrying "
                    "the removal, not the delivery (try {}, {} entries of {})",
                    lane.writing.front().entry.id, s.to_string(), tries, lane.writing.size(),
                    lane.writing.front().entry.mailbox);
    }
    timer.expires_after(pause);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    pause = std::min<std::chrono::milliseconds>(pause * 2, kMaxPause);
    s = co_await spool_.delivered(lane.writing);
  }
  if (s.is_ok()) lane.failing = false;
  co_return s;
}

}  // namespace holdd
