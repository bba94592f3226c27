// QueueCounters: the in-memory per-mailbox totals of what is queued
// (queue_counters.h).
#include "holdd/spool/queue_counters.h"

#include <algorithm>

namespace holdd {

void QueueCounters::insert_arrival(Mailbox& m, int64_t arrival_us) {
  auto& a = m.unparked_arrivals;
  // Arrivals grow with each commit: almost always an append.
  if (a.empty() || a.back() <= arrival_us) {
    a.push_back(arrival_us);
  } else {
    a.insert(std::upper_bound(a.begin(), a.end(), arrival_us), arrival_us);
  }
}

void QueueCounters::erase_arrival(Mailbox& m, int64_t arrival_us) {
  auto& a = m.unparked_arrivals;
  // Deliveries take the first entry: almost always the front.
  if (!a.empty() && a.front() == arrival_us) {
    a.pop_front();
    return;
  }
  auto it = std::lower_bound(a.begin(), a.end(), arrival_us);
  if (it != a.end() && *it == arrival_us) a.erase(it);
}

void QueueCounters::add(const QueueEntry& e) {
  std::lock_guard lock(mu_);
  Mailbox& m = mailboxes_[e.mailbox];
  QueueTotals& t = m.totals;
  if (t.messages == 0 || e.arrival_us < t.oldest_arrival_us) t.oldest_arrival_us = e.arrival_us;
  ++t.messages;
  t.bytes += e.size;
  if (e.parked) {
    ++t.parked;
  } else {
    if (e.attempts > 0) ++t.deferred;
    insert_arrival(m, e.arrival_us);
  }
}

void QueueCounters::remove(const QueueEntry& e, int64_t head_arrival_us) {
  std::lock_guard lock(mu_);
  auto it = mailboxes_.find(e.mailbox);
  if (it == mailboxes_.end()) return;
  QueueTotals& t = it->second.totals;
  t.messages -= std::min<uint64_t>(t.messages, 1);
  t.bytes -= std::min<uint64_t>(t.bytes, e.size);
  if (e.parked) {
    t.parked -= std::min<uint64_t>(t.parked, 1);
  } else {
    if (e.attempts > 0) t.deferred -= std::min<uint64_t>(t.deferred, 1);
    erase_arrival(it->second, e.arrival_us);
  }
  t.oldest_arrival_us = head_arrival_us;
  if (t.messages == 0) mailboxes_.erase(it);
}

void QueueCounters::deferred(const QueueEntry& before) {
  if (before.parked || before.attempts > 0) return;  // counted already, or not at all
  std::lock_guard lock(mu_);
  auto it = mailboxes_.find(before.mailbox);
  if (it != mailboxes_.end()) ++it->second.totals.deferred;
}

void QueueCounters::parked(const QueueEntry& before) {
  if (before.parked) return;
  std::lock_guard lock(mu_);
  auto it = mailboxes_.find(before.mailbox);
  if (it == mailboxes_.end()) return;
  QueueTotals& t = it->second.totals;
  ++t.parked;
  if (before.attempts > 0) t.deferred -= std::min<uint64_t>(t.deferred, 1);
  erase_arrival(it->second, before.arrival_us);
}

void QueueCounters::unparked(const QueueEntry& before) {
  if (!before.parked) return;
  std::lock_guard lock(mu_);
  auto it = mailboxes_.find(before.mailbox);
  if (it == mailboxes_.end()) return;
  QueueTotals& t = it->second.totals;
  t.parked -= std::min<uint64_t>(t.parked, 1);
  if (before.attempts > 0) ++t.deferred;
  insert_arrival(it->second, before.arrival_us);
}

void QueueCounters::clear() {
  std::lock_guard lock(mu_);
  mailboxes_.clear();
}

QueueTotals QueueCounters::totals(const std::string& mailbox) const {
  std::lock_guard lock(mu_);
  auto it = mailboxes_.find(mailbox);
  return it == mailboxes_.end() ? QueueTotals{} : it->second.totals;
}

std::map<std::string, QueueTotals> QueueCounters::all() const {
  std::lock_guard lock(mu_);
  std::map<std::string, QueueTotals> out;
  for (const auto& [name, m] : mailboxes_) out.emplace_hint(out.end(), name, m.totals);
  return out;
}

Backlog QueueCounters::unparked_before(const std::string& mailbox, int64_t before_us) const {
  std::lock_guard lock(mu_);
  Backlog b;
  auto it = mailboxes_.find(mailbox);
  if (it == mailboxes_.end()) return b;
  const auto& a = it->second.unparked_arrivals;
  auto end = std::lower_bound(a.begin(), a.end(), before_us);
  b.count = static_cast<uint64_t>(end - a.begin());
  if (b.count > 0) b.oldest_arrival_us = a.front();
  return b;
}

}  // namespace holdd
