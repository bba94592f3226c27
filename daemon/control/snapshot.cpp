#include "holdd/control/snapshot.h"

#include <algorithm>

#include "holdd/base/clock.h"

namespace holdd {

namespace {

// The oldest of two arrival times where 0 means "none".
int64_t older(int64_t a, int64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

void add(QueueTotals& sum, const QueueTotals& t) {
  sum.messages += t.messages;
  sum.bytes += t.bytes;
  sum.parked += t.parked;
  sum.oldest_arrival_us = older(sum.oldest_arrival_us, t.oldest_arrival_us);
}

}  // namespace

std::map<std::string, MailboxRecord> known_mailboxes(const DaemonView& view) {
  std::map<std::string, MailboxRecord> out;
  for (MailboxRecord& r : view.spool->mailbox_records()) {
    std::string key = r.mailbox;
    out.emplace(std::move(key), std::move(r));
  }
  // With [cluster] the spool files a mailbox the database has not named yet as
  // held; a listed one is in the configured initial state until then.
  const MailboxState initial =
      view.cluster && view.config ? view.config().directory.initial_state : view.spool->initial_state();
  if (view.cluster) {
    for (const auto& [key, state] : view.cluster->states()) {
      if (out.count(key) != 0) continue;
      MailboxRecord r;
      r.mailbox = key;
      r.state = cluster::spool_state(state);
      out.emplace(key, std::move(r));
    }
  }
  if (std::shared_ptr<const Directory> directory = view.directory ? view.directory() : nullptr) {
    for (const std::string& key : directory->mailboxes()) {
      if (out.count(key) != 0) continue;
      MailboxRecord r;
      r.mailbox = key;
      r.state = initial;
      out.emplace(key, std::move(r));
    }
  }
  return out;
}

DaemonSnapshot take_snapshot(const DaemonView& view) {
  DaemonSnapshot s;
  s.now_us = now_unix_micros();
  s.started_us = to_unix_micros(view.started);
  const Config& config = view.config();
  s.min_free_disk = config.spool.min_free_disk;
  s.warn_after = config.delivery.warn_after;
  const int64_t warn_after_us = static_cast<int64_t>(s.warn_after.count()) * 1000000;

  std::map<std::string, MailboxRecord> mailboxes = known_mailboxes(view);
  for (const auto& [key, record] : mailboxes) ++s.mailboxes[static_cast<size_t>(record.state)];

  for (const auto& [key, totals] : view.spool->all_totals()) {
    auto it = mailboxes.find(key);
    if (it == mailboxes.end()) it = mailboxes.emplace(key, view.spool->mailbox(key)).first;
    const MailboxRecord& record = it->second;
    add(s.queued, totals);
    s.parked += totals.parked;
    if (record.state == MailboxState::kHeld) add(s.held, totals);
    if (record.state == MailboxState::kOld && totals.messages > 0) {
      ++s.old_mailboxes_with_mail;
      s.queued_for_old += totals.messages;
    }
    s.deferred += totals.deferred;
    // Late: unparked, deliverable, and the warn clock max(arrival,
    // deliverable_since) older than warn_after, i.e. both times before `due`.
    const int64_t due = s.now_us - warn_after_us;
    if (record.state != MailboxState::kHeld && record.deliverable_since_us < due) {
      Backlog late = view.spool->unparked_before(key, due);
      s.late += late.count;
      if (late.count > 0) {
        s.oldest_late_clock_us = older(s.oldest_late_clock_us,
                                       std::max(late.oldest_arrival_us, record.deliverable_since_us));
      }
    }
  }

  if (view.cluster != nullptr) {
    s.cluster.enabled = true;
    s.cluster.node = view.cluster->node_name();
    s.cluster.connected = view.cluster->connected();
    s.cluster.applied_change = view.cluster->applied_change();
    s.cluster.seconds_since_sync = view.cluster->seconds_since_sync();
    s.cluster.releasing_here = view.cluster->releasing_here();
    // The mailboxes `holdctl list` shows, each in its shared state (the spool's
    // until the database named it).
    for (const auto& [key, record] : mailboxes) {
      const std::string shared = view.cluster->state_of(key);
      ++s.cluster.mailboxes[cluster::shared_state_index(shared.empty() ? to_string(record.state) : shared)];
    }
  }

  s.last_relay_us[static_cast<size_t>(UpstreamKind::kOld)] = view.spool->last_relay_us(UpstreamKind::kOld);
  s.last_relay_us[static_cast<size_t>(UpstreamKind::kNew)] = view.spool->last_relay_us(UpstreamKind::kNew);
  s.forwarded_by_old = view.spool->forwarded_by_old();
  s.last_forwarded_by_old_us = view.spool->last_forwarded_by_old_us();
  s.spool = view.spool->stats();
  if (view.dispatcher != nullptr) {
    s.relay = view.dispatcher->counters();
    s.in_flight = view.dispatcher->in_flight();
    s.removal_pending = view.dispatcher->removals_pending();
    s.paused = view.dispatcher->paused();
  }
  if (view.intake != nullptr) s.intake = *view.intake;
  return s;
}

}  // namespace holdd
