#include "holdd/spool/queue_counters.h"

#include <doctest/doctest.h>

namespace holdd {
namespace {

QueueEntry entry(std::string mailbox, int64_t arrival, uint64_t size = 10) {
  QueueEntry e;
  e.mailbox = std::move(mailbox);
  e.arrival_us = arrival;
  e.size = size;
  return e;
}

}  // namespace

TEST_CASE("QueueCounters: totals, deferred and late follow each kind of write") {
  QueueCounters c;
  QueueEntry a1 = entry("a", 100), a2 = entry("a", 200), a3 = entry("a", 300), b1 = entry("b", 150, 7);
  for (const QueueEntry* e : {&a1, &a2, &a3, &b1}) c.add(*e);
  CHECK(c.totals("a").messages == 3);
  CHECK(c.totals("a").bytes == 30);
  CHECK(c.totals("a").oldest_arrival_us == 100);
  CHECK(c.unparked_before("a", 250).count == 2);
  CHECK(c.unparked_before("a", 200).count == 1);  // strictly before
  CHECK(c.unparked_before("a", 250).oldest_arrival_us == 100);

  c.deferred(a1);  // first failed attempt
  a1.attempts = 1;
  c.deferred(a1);  // the second changes nothing
  CHECK(c.totals("a").deferred == 1);

  c.parked(a2);  // a 5xx: out of the deliverable backlog
  a2.parked = true;
  CHECK(c.totals("a").parked == 1);
  CHECK(c.unparked_before("a", 1000).count == 2);

  c.parked(a1);  // parked after a deferral: no longer counted as deferred
  a1.parked = true;
  CHECK(c.totals("a").deferred == 0);
  CHECK(c.totals("a").parked == 2);

  c.unparked(a1);  // holdctl retry
  a1.parked = false;
  CHECK(c.totals("a").deferred == 1);
  CHECK(c.unparked_before("a", 1000).count == 2);
  CHECK(c.unparked_before("a", 1000).oldest_arrival_us == 100);

  c.remove(a1, /*head_arrival_us=*/200);  // delivered
  CHECK(c.totals("a").messages == 2);
  CHECK(c.totals("a").deferred == 0);
  CHECK(c.totals("a").oldest_arrival_us == 200);
  CHECK(c.unparked_before("a", 1000).count == 1);  // a3; a2 is parked

  c.remove(a2, 300);
  c.remove(a3, 0);
  CHECK(c.totals("a").messages == 0);
  CHECK(c.all().size() == 1);  // only b is left
  CHECK(c.all().at("b").bytes == 7);
}

TEST_CASE("QueueCounters: arrivals out of order stay sorted") {
  QueueCounters c;
  c.add(entry("a", 300));
  c.add(entry("a", 100));
  c.add(entry("a", 200));
  CHECK(c.unparked_before("a", 150).count == 1);
  CHECK(c.unparked_before("a", 250).count == 2);
  CHECK(c.totals("a").oldest_arrival_us == 100);
  c.remove(entry("a", 200), 100);
  CHECK(c.unparked_before("a", 1000).count == 2);
}

}  // namespace holdd
