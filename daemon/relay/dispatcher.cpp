#include "holdd/relay/dispatcher.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "holdd/base/clock.h"
#include "holdd/base/maillog.h"
#include "holdd/base/printable.h"
#include "holdd/relay/pending_removals.h"
#include "holdd/relay/upstream_client.h"

namespace holdd {

namespace {

constexpr std::chrono::seconds kIdleConnectionLifetime{10};
constexpr std::chrono::milliseconds kPollInterval{20};

UpstreamKind kind_for(MailboxState s) {
  return s == MailboxState::kMigrated ? UpstreamKind::kNew : UpstreamKind::kOld;
}

// retry_min * 2^(attempts-1), capped at retry_max.
std::chrono::seconds backoff(const DeliveryConfig& d, uint32_t attempts) {
  auto delay = d.retry_min;
  for (uint32_t i = 1; i < attempts && delay < d.retry_max; ++i) delay *= 2;
  return std::min(delay, d.retry_max);
}

}  // namespace

// Shared by the mailboxes of one `release --rate N`: one delivery every 1/N s.
struct RateGroup {
  double per_second = 0;
  int64_t next_slot_us = 0;
};

struct Lane {
  bool in_flight = false;
  bool in_ready = false;
  int64_t next_attempt_us = 0;
  std::shared_ptr<RateGroup> rate;
};

struct Dispatcher::Impl {
  net::any_io_executor ex;
  Spool& spool;
  Config config;
  net::steady_timer wake;
  std::unordered_map<std::string, Lane> lanes;
  std::deque<std::string> ready;                   // round robin of mailboxes to look at
  std::multimap<int64_t, std::string> delayed;     // (due unix micros, mailbox)
  std::unordered_map<std::string, uint64_t> delivered_count;  // for settle reports
  std::map<UpstreamKind, std::vector<std::unique_ptr<UpstreamClient>>> idle;
  std::unordered_set<UpstreamClient*> busy;  // delivering now (stop() may close them)
  uint64_t active = 0;
  bool paused = false;
  bool stopping = false;
  bool running = false;
  RelayCounters counters;
  std::unordered_set<std::string> warned_no_upstream;
  PendingRemovals removals;
  std::unordered_map<std::string, uint64_t> barriers;  // releasing mailbox -> last backlog seq

  Impl(net::any_io_executor e, Spool& s, const Config& c)
      : ex(std::move(e)), spool(s), config(c), wake(ex),
        removals(ex, spool, [this](const std::string& mailbox,
                                   const std::vector<AcceptedDelivery>& batch) {
          removed(mailbox, batch);
        }) {}

  // Removals are durable: the entries leave the totals and enter the counters at
  // the same time, so status and /metrics never count one twice or not at all.
  // The mailbox may have been held back by them (PendingRemovals::holds_back).
  void removed(const std::string& mailbox, const std::vector<AcceptedDelivery>& done) {
    for (const AcceptedDelivery& d : done) {
      (d.upstream == UpstreamKind::kOld ? counters.delivered_old : counters.delivered_new)++;
      (d.upstream == UpstreamKind::kOld ? counters.bytes_old : counters.bytes_new) += d.entry.size;
      ++delivered_count[mailbox];
    }
    make_ready(mailbox);
    poke();
  }

  void poke() { wake.cancel(); }

  void make_ready(const std::string& mailbox) {
    Lane& lane = lanes[mailbox];
    if (!lane.in_ready) {
      lane.in_ready = true;
      ready.push_back(mailbox);
    }
  }

  void delay(const std::string& mailbox, int64_t due_us) { delayed.emplace(due_us, mailbox); }

  // The scheduler: one coroutine that starts deliveries while slots are free and
  // sleeps until the next retry is due or something changes.
  net::awaitable<void> run() {
    running = true;
    while (!stopping) {
      int64_t now = now_unix_micros();
      while (!delayed.empty() && delayed.begin()->first <= now) {
        make_ready(delayed.begin()->second);
        delayed.erase(delayed.begin());
      }
      size_t looked = 0, in_queue = ready.size();
      while (!paused && active < config.delivery.concurrency && looked < in_queue && !ready.empty()) {
        std::string mailbox = std::move(ready.front());
        ready.pop_front();
        ++looked;
        lanes[mailbox].in_ready = false;
        try_start(mailbox, now);
      }
      reap_idle_connections();
      auto until = std::chrono::steady_clock::now() + kIdleConnectionLifetime;
      if (!paused && active < config.delivery.concurrency && !ready.empty()) {
        until = std::chrono::steady_clock::now();  // more to look at: go round again
      } else if (!delayed.empty()) {
        auto wait = std::chrono::microseconds(std::max<int64_t>(0, delayed.begin()->first - now));
        until = std::min(until, std::chrono::steady_clock::now() + wait);
      }
      wake.expires_at(until);
      co_await wake.async_wait(net::as_tuple(net::use_awaitable));
    }
    running = false;
  }

  // Starts run(). Not `detached`: an exception escaping the scheduler (a bug) would
  // stop all relaying without a word. It is logged, and the scheduler started
  // again after a second, with every mailbox that has mail looked at anew.
  void spawn_scheduler() {
    net::co_spawn(ex, [this]() -> net::awaitable<void> { co_await run(); },
                  [this](std::exception_ptr e) {
                    if (!e) return;
                    running = false;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& error) {
                      spdlog::critical("relay: the scheduler failed ({}); restarting it in 1s",
                                       error.what());
                    } catch (...) {
                      spdlog::critical("relay: the scheduler failed; restarting it in 1s");
                    }
                    if (stopping) return;
                    auto timer = std::make_shared<net::steady_timer>(ex, std::chrono::seconds(1));
                    timer->async_wait([this, timer](boost::system::error_code) {
                      if (stopping) return;
                      for (const auto& [mailbox, totals] : spool.all_totals()) make_ready(mailbox);
                      spawn_scheduler();
                    });
                  });
  }

  void try_start(const std::string& mailbox, int64_t now) {
    Lane& lane = lanes[mailbox];
    if (lane.in_flight) return;  // strictly one at a time per mailbox: FIFO
    if (removals.holds_back(mailbox, config.delivery.pipeline)) return;  // removed() brings it back
    MailboxState state = spool.mailbox(mailbox).state;
    // A held mailbox whose release is in progress on several nodes (cluster/)
    // replays the backlog up to its barrier to the new server; what came after
    // the barrier waits until the mailbox is migrated everywhere.
    auto barrier = barriers.find(mailbox);
    const bool releasing = state == MailboxState::kHeld && barrier != barriers.end();
    if (state == MailboxState::kHeld && !releasing) return;  // notify() brings it back on release
    // Accepted entries whose removal is still committing are skipped: the head is
    // the first entry the upstream has not accepted yet.
    std::optional<QueueEntry> head = spool.head(mailbox, removals.of(mailbox));
    if (!head) {
      if (!releasing) lanes.erase(mailbox);
      return;
    }
    if (releasing) {
      if (head->seq > barrier->second) return;  // the backlog is done: wait for migrated
      state = MailboxState::kMigrated;
    }
    const std::optional<UpstreamConfig>& upstream = config.upstream_for(state);
    if (!upstream) {
      if (warned_no_upstream.insert(mailbox).second) {
        spdlog::warn("relay: no [upstream.{}] configured: mail for {} ({}) stays queued",
                     to_string(kind_for(state)), mailbox, to_string(state));
      }
      return;  // a reload that adds the upstream calls notify()
    }
    if (head->next_attempt_us > now) {
      delay(mailbox, head->next_attempt_us);
      return;
    }
    if (lane.rate && lane.rate->per_second > 0) {
      if (lane.rate->next_slot_us > now) {
        delay(mailbox, lane.rate->next_slot_us);
        return;
      }
      // At most a day between two messages, whatever tiny rate was asked for.
      const double interval_us = std::min(1e6 / lane.rate->per_second, 86400e6);
      lane.rate->next_slot_us = std::max(now, lane.rate->next_slot_us) + static_cast<int64_t>(interval_us);
    }
    lane.in_flight = true;
    ++active;
    net::co_spawn(ex, deliver(mailbox, std::move(*head), state, *upstream),
                  [mailbox](std::exception_ptr e) {
                    if (!e) return;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& error) {
                      spdlog::error("relay: delivery for {} failed: {}", mailbox, error.what());
                    }
                  });
  }

  std::unique_ptr<UpstreamClient> acquire(UpstreamKind kind, const UpstreamConfig& upstream) {
    auto& pool = idle[kind];
    while (!pool.empty()) {
      std::unique_ptr<UpstreamClient> client = std::move(pool.back());
      pool.pop_back();
      if (client->is_open() && client->upstream().host == upstream.host &&
          client->upstream().port == upstream.port) {
        return client;
      }
      client->close();
    }
    return std::make_unique<UpstreamClient>(ex, upstream, config.server.hostname);
  }

  void release(UpstreamKind kind, std::unique_ptr<UpstreamClient> client) {
    if (stopping || !client->is_open()) {
      client->close();
      return;
    }
    idle[kind].push_back(std::move(client));
  }

  void reap_idle_connections() {
    auto now = std::chrono::steady_clock::now();
    for (auto& [kind, pool] : idle) {
      for (auto it = pool.begin(); it != pool.end();) {
        if (stopping || now - (*it)->last_used() > kIdleConnectionLifetime || !(*it)->is_open()) {
          say_goodbye(std::move(*it));
          it = pool.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  void say_goodbye(std::unique_ptr<UpstreamClient> client) {
    if (!client->is_open()) return;
    std::shared_ptr<UpstreamClient> shared(std::move(client));
    net::co_spawn(ex, [shared]() -> net::awaitable<void> { co_await shared->quit(); }, net::detached);
  }

  // One delivery and its bookkeeping. Whatever happens inside (even an escaped
  // exception, which is a bug), the mailbox's lane is freed afterwards and the
  // mailbox looked at again: a lane left "in flight" would stop its mail forever.
  net::awaitable<void> deliver(std::string mailbox, QueueEntry entry, MailboxState state,
                               UpstreamConfig upstream) {
    int64_t retry_at = 0;
    try {
      retry_at = co_await attempt(mailbox, std::move(entry), state, std::move(upstream));
    } catch (const std::exception& error) {
      spdlog::error("relay: delivery for {} failed unexpectedly: {}; trying again in {}s",
                    printable(mailbox), error.what(), config.delivery.retry_min.count());
      retry_at = now_unix_micros() +
                 std::chrono::duration_cast<std::chrono::microseconds>(config.delivery.retry_min).count();
    }
    Lane& lane = lanes[mailbox];
    lane.in_flight = false;
    --active;
    if (retry_at > 0) {
      delay(mailbox, retry_at);
    } else {
      make_ready(mailbox);
    }
    poke();
  }

  // Reads the entry's message from the spool and hands it to the upstream.
  net::awaitable<DeliveryResult> deliver_entry(const QueueEntry& entry, UpstreamKind kind,
                                               const UpstreamConfig& upstream) {
    Result<MessageMeta> meta = spool.meta(entry.id);
    Result<std::string> content = spool.content(entry.id);
    if (!meta || !content) {
      DeliveryResult failed;
      failed.outcome = DeliveryResult::Outcome::kDeferred;
      failed.reply = "spool read failed: " + (meta ? content.status() : meta.status()).to_string();
      co_return failed;
    }
    OutgoingMessage msg;
    msg.queue_id = entry.id;
    msg.sender = entry.sender;
    msg.rcpt = entry.recipient.rcpt;
    msg.eight_bit = meta->eight_bit;
    msg.smtputf8 = meta->smtputf8;
    msg.dsn_ret = meta->dsn_ret;
    msg.dsn_envid = meta->dsn_envid;
    msg.dsn_notify = entry.recipient.notify;
    msg.dsn_orcpt = entry.recipient.orcpt;
    msg.content = &*content;
    std::unique_ptr<UpstreamClient> client = acquire(kind, upstream);
    busy.insert(client.get());
    DeliveryResult result = co_await client->deliver(msg);
    busy.erase(client.get());
    release(kind, std::move(client));
    co_return result;
  }

  // Hands one entry to its upstream and records the outcome (per mailbox FIFO: SPEC
  // "Relay and replay"). The order depends on the upstream's answer, so:
  // - 2xx: the mailbox's next entry may go at once. The removal is committed in the
  //   background (PendingRemovals), batched with the mailbox's next acceptances and
  //   with other writes (group commit); until it is durable the entry is skipped,
  //   so it is never sent twice while holdd runs, and a crash before that commit
  //   sends it (and the few accepted after it) again, in order: at-least-once. It
  //   was one LMDB commit per message of a mailbox before (issue 16).
  // - 4xx / 5xx: the deferral or parking is committed before the mailbox goes on,
  //   since the next head depends on it (a deferred entry stays the head).
  // Returns when the mailbox may be tried again (0: at once).
  net::awaitable<int64_t> attempt(const std::string& mailbox, QueueEntry entry, MailboxState state,
                                  UpstreamConfig upstream) {
    UpstreamKind kind = kind_for(state);
    int64_t started = now_unix_micros();
    DeliveryResult result;
    if (kind == UpstreamKind::kOld && entry.forwarded_by_old) {
      // SPEC "The old server": sending it back would be a loop. Parked, with why;
      // `holdctl retry` after a lock or release sends it where the mailbox now is.
      result.outcome = DeliveryResult::Outcome::kRejected;
      result.reply =
          "loop: forwarded by the old server for a mailbox that is still old; not relayed back "
          "(lock or release the mailbox, then holdctl retry)";
    } else {
      result = co_await deliver_entry(entry, kind, upstream);
    }
    std::string relay = upstream.host + ":" + std::to_string(upstream.port);
    Status recorded;
    int64_t retry_at = 0;
    switch (result.outcome) {
      case DeliveryResult::Outcome::kAccepted:
        // Removed only now that the upstream has it: at-least-once, never lost.
        maillog::relayed(entry.id, entry.recipient.rcpt, to_string(kind), relay,
                         static_cast<double>(now_unix_micros() - started) / 1e6, result.reply);
        removals.add(AcceptedDelivery{std::move(entry), kind, std::move(result.reply)});
        break;
      case DeliveryResult::Outcome::kRejected:
        recorded = co_await spool.parked(entry, result.reply);
        if (recorded.is_ok()) {
          maillog::parked(entry.id, entry.recipient.rcpt, to_string(kind), result.reply);
          ++counters.parked;
        }
        break;
      case DeliveryResult::Outcome::kDeferred: {
        uint32_t attempts = entry.attempts + 1;
        retry_at = now_unix_micros() +
                   std::chrono::duration_cast<std::chrono::microseconds>(
                       backoff(config.delivery, attempts)).count();
        recorded = co_await spool.deferred(entry, result.reply, retry_at);
        maillog::deferred(entry.id, entry.recipient.rcpt, to_string(kind), attempts,
                          format_rfc3339_micros(retry_at), result.reply);
        ++counters.deferred;
        break;
      }
    }
    if (!recorded.is_ok()) {
      // A deferral or a parking that could not be recorded: the entry is still at
      // the head as it was, so it is tried again after a pause, not in a loop.
      spdlog::error("{}: could not record delivery outcome for {}: {}", entry.id,
                    printable(mailbox), recorded.to_string());
      retry_at = now_unix_micros() +
                 std::chrono::duration_cast<std::chrono::microseconds>(config.delivery.retry_min).count();
    }
    co_return retry_at;
  }

  bool settled(const std::string& mailbox) const {
    QueueTotals t = spool.totals(mailbox);
    return t.messages == t.parked;
  }

  bool any_in_flight(const std::vector<std::string>& mailboxes) const {
    for (const std::string& m : mailboxes) {
      auto it = lanes.find(m);
      if (it != lanes.end() && it->second.in_flight) return true;
      if (removals.count(m) > 0 && !stopping) return true;  // stop() gives them up
    }
    return false;
  }
};

Dispatcher::Dispatcher(net::any_io_executor ex, Spool& spool, const Config& config)
    : impl_(std::make_unique<Impl>(std::move(ex), spool, config)) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::start() {
  for (const auto& [mailbox, totals] : impl_->spool.all_totals()) impl_->make_ready(mailbox);
  impl_->spawn_scheduler();
}

net::awaitable<void> Dispatcher::stop(std::chrono::seconds grace) {
  impl_->stopping = true;
  impl_->removals.stop();
  impl_->poke();
  net::steady_timer timer(impl_->ex);
  auto deadline = std::chrono::steady_clock::now() + grace;
  bool closed = false;
  while (impl_->active > 0 || impl_->running || !impl_->removals.idle()) {
    if (!closed && std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("relay: {} deliveries still in flight after {}s: closing their connections",
                   impl_->active, grace.count());
      for (UpstreamClient* client : impl_->busy) client->close();
      closed = true;
    }
    timer.expires_after(kPollInterval);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
  for (auto& [kind, pool] : impl_->idle) {
    for (auto& client : pool) co_await client->quit();
    pool.clear();
  }
}

void Dispatcher::reconfigure(const Config& config) {
  impl_->config = config;
  impl_->warned_no_upstream.clear();
  for (auto& [kind, pool] : impl_->idle) {
    for (auto& client : pool) impl_->say_goodbye(std::move(client));
    pool.clear();
  }
  for (const auto& [mailbox, totals] : impl_->spool.all_totals()) impl_->make_ready(mailbox);
  impl_->poke();
}

void Dispatcher::set_release_barrier(const std::string& mailbox, std::optional<uint64_t> last_seq) {
  if (last_seq) {
    impl_->barriers[mailbox] = *last_seq;
  } else {
    impl_->barriers.erase(mailbox);
  }
  impl_->make_ready(mailbox);
  impl_->poke();
}

bool Dispatcher::backlog_done(const std::string& mailbox) const {
  auto barrier = impl_->barriers.find(mailbox);
  if (barrier == impl_->barriers.end()) return false;
  auto lane = impl_->lanes.find(mailbox);
  if (lane != impl_->lanes.end() && lane->second.in_flight) return false;
  for (uint64_t seq : impl_->removals.of(mailbox)) {
    if (seq <= barrier->second) return false;  // accepted, removal not durable yet
  }
  std::optional<QueueEntry> head = impl_->spool.head(mailbox, impl_->removals.of(mailbox));
  return !head || head->seq > barrier->second;
}

void Dispatcher::notify(const std::vector<std::string>& mailboxes) {
  for (const std::string& m : mailboxes) impl_->make_ready(m);
  impl_->poke();
}

net::awaitable<void> Dispatcher::quiesce(std::vector<std::string> mailboxes) {
  net::steady_timer timer(impl_->ex);
  while (impl_->any_in_flight(mailboxes)) {
    timer.expires_after(kPollInterval);
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
}

net::awaitable<SettleReport> Dispatcher::settle(std::vector<std::string> mailboxes,
                                                std::chrono::seconds limit) {
  std::unordered_map<std::string, uint64_t> start;
  for (const std::string& m : mailboxes) start[m] = impl_->delivered_count[m];
  auto deadline = std::chrono::steady_clock::now() + limit;
  net::steady_timer timer(impl_->ex);
  for (;;) {
    bool all = true;
    for (const std::string& m : mailboxes) {
      if (!impl_->settled(m)) {
        all = false;
        break;
      }
    }
    if (all || (limit.count() > 0 && std::chrono::steady_clock::now() >= deadline)) break;
    timer.expires_after(std::chrono::milliseconds(50));
    co_await timer.async_wait(net::as_tuple(net::use_awaitable));
  }
  SettleReport report;
  for (const std::string& m : mailboxes) {
    report.delivered += impl_->delivered_count[m] - start[m];
    QueueTotals t = impl_->spool.totals(m);
    report.parked += t.parked;
    report.remaining += t.messages - t.parked;
  }
  co_return report;
}

void Dispatcher::limit_rate(const std::vector<std::string>& mailboxes, double per_second) {
  std::shared_ptr<RateGroup> group;
  if (per_second > 0) {
    group = std::make_shared<RateGroup>();
    group->per_second = per_second;
  }
  for (const std::string& m : mailboxes) impl_->lanes[m].rate = group;
  impl_->poke();
}

void Dispatcher::pause() { impl_->paused = true; }

void Dispatcher::resume() {
  impl_->paused = false;
  impl_->poke();
}

bool Dispatcher::paused() const { return impl_->paused; }

MailboxActivity Dispatcher::activity(const std::string& mailbox) const {
  MailboxActivity a;
  auto it = impl_->lanes.find(mailbox);
  if (it != impl_->lanes.end()) a.in_flight = it->second.in_flight;
  a.removal_pending = impl_->removals.count(mailbox);
  if (auto head = impl_->spool.head(mailbox, impl_->removals.of(mailbox))) {
    a.next_attempt_us = head->next_attempt_us;
  }
  return a;
}

RelayCounters Dispatcher::counters() const { return impl_->counters; }

uint64_t Dispatcher::in_flight() const { return impl_->active; }

uint64_t Dispatcher::removals_pending() const { return impl_->removals.count(); }

}  // namespace holdd
