#pragma once
// QueueCounters: what is queued, per mailbox, kept in memory so that the operator's
// reads (`holdctl status`, `check`, /metrics) cost O(mailboxes), not a walk over
// every queue entry: a mid-migration backlog of 200,000 held messages scraped every
// second must not stall intake and delivery (issue 12).
//
// The Spool rebuilds it by one scan at open and updates it from the commit hooks of
// each write (after the LMDB commit, so it follows what readers of LMDB see).
// Thread-safe: written on the spool's writer thread, read from any.
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "holdd/spool/records.h"

namespace holdd {

// Unparked entries of a mailbox that arrived before some time.
struct Backlog {
  uint64_t count = 0;
  int64_t oldest_arrival_us = 0;  // of the first of them; 0 if none
};

class QueueCounters {
 public:
  // `e` entered the queue (a put, or recovery's scan).
  void add(const QueueEntry& e);
  // `e` (as stored before) left the queue (delivered or dropped); the mailbox's
  // first entry is now `head_arrival_us` (0: none left).
  void remove(const QueueEntry& e, int64_t head_arrival_us);
  // `before` was tried and deferred (its attempts are about to grow).
  void deferred(const QueueEntry& before);
  // `before` (not parked) was parked.
  void parked(const QueueEntry& before);
  // `before` (parked) was requeued by `holdctl retry`.
  void unparked(const QueueEntry& before);
  void clear();

  QueueTotals totals(const std::string& mailbox) const;
  std::map<std::string, QueueTotals> all() const;  // mailboxes with entries
  // Unparked entries of `mailbox` that arrived strictly before `before_us`: the
  // ones whose warn_after clock may have run out. O(log n).
  Backlog unparked_before(const std::string& mailbox, int64_t before_us) const;

 private:
  struct Mailbox {
    QueueTotals totals;
    std::deque<int64_t> unparked_arrivals;  // sorted
  };
  static void insert_arrival(Mailbox& m, int64_t arrival_us);
  static void erase_arrival(Mailbox& m, int64_t arrival_us);

  mutable std::mutex mu_;
  std::map<std::string, Mailbox> mailboxes_;
};

}  // namespace holdd
