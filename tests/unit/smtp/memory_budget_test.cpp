#include "holdd/smtp/memory_budget.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace holdd::smtp {
namespace {

using Reservation = MessageMemoryBudget::Reservation;

TEST_CASE("MessageMemoryBudget: reservations grow within the limit, and a refusal takes nothing") {
  MessageMemoryBudget budget(1000);
  Reservation a = budget.reservation();
  Reservation b = budget.reservation();
  CHECK(a.grow(600));
  CHECK(b.grow(300));
  CHECK(budget.used() == 900);
  CHECK(budget.available() == 100);
  CHECK_FALSE(b.grow(101));  // over the limit: refused whole, not in part
  CHECK(b.bytes() == 300);
  CHECK(budget.used() == 900);
  CHECK(budget.refusals() == 1);
  CHECK(b.grow(100));  // exactly up to the limit is fine
  CHECK(budget.available() == 0);
  CHECK_FALSE(a.grow(1));
  CHECK(budget.refusals() == 2);
  CHECK(budget.peak() == 1000);
}

TEST_CASE("MessageMemoryBudget: shrink, release and destruction give the bytes back") {
  MessageMemoryBudget budget(1000);
  {
    Reservation a = budget.reservation();
    REQUIRE(a.grow(700));
    a.shrink(200);
    CHECK(a.bytes() == 500);
    CHECK(budget.used() == 500);
    a.release();
    CHECK(a.bytes() == 0);
    CHECK(budget.used() == 0);
    REQUIRE(a.grow(400));
    Reservation b = budget.reservation();
    REQUIRE(b.grow(600));
    CHECK(budget.available() == 0);
  }  // both destroyed
  CHECK(budget.used() == 0);
  CHECK(budget.peak() == 1000);
}

TEST_CASE("MessageMemoryBudget: a moved reservation is given back once, by its new owner") {
  MessageMemoryBudget budget(1000);
  Reservation a = budget.reservation();
  REQUIRE(a.grow(300));
  Reservation b = std::move(a);
  CHECK(a.bytes() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(b.bytes() == 300);
  CHECK(budget.used() == 300);
  Reservation c = budget.reservation();
  REQUIRE(c.grow(100));
  c = std::move(b);  // c's own 100 bytes are given back, b's 300 move over
  CHECK(budget.used() == 300);
  c.release();
  CHECK(budget.used() == 0);
}

TEST_CASE("MessageMemoryBudget: a lowered limit keeps what is held and refuses new growth") {
  MessageMemoryBudget budget(1000);
  Reservation a = budget.reservation();
  REQUIRE(a.grow(800));
  budget.set_limit(500);  // SIGHUP
  CHECK(budget.limit() == 500);
  CHECK(budget.available() == 0);
  CHECK(a.bytes() == 800);  // nothing is taken away
  CHECK_FALSE(budget.reservation().grow(1));
  a.shrink(400);
  Reservation b = budget.reservation();
  CHECK(b.grow(100));  // 400 + 100 <= 500
  CHECK_FALSE(b.grow(1));
  budget.set_limit(2000);
  CHECK(b.grow(1000));
}

TEST_CASE("MessageMemoryBudget: a reservation without a budget grows without limit") {
  Reservation free_standing;
  CHECK(free_standing.grow(uint64_t{1} << 40));
  CHECK(free_standing.bytes() == uint64_t{1} << 40);
  free_standing.release();
  CHECK(free_standing.bytes() == 0);
}

TEST_CASE("MessageMemoryBudget: count_refusal counts refusals decided by the caller") {
  MessageMemoryBudget budget(10);
  budget.count_refusal();
  budget.count_refusal();
  CHECK(budget.refusals() == 2);
  CHECK(budget.used() == 0);
}

TEST_CASE("MessageMemoryBudget: refusals are reported for the log once a minute, with the count since") {
  using namespace std::chrono_literals;
  MessageMemoryBudget budget(10);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(budget.refusals_to_log(t0) == 0);  // nothing refused yet
  budget.count_refusal();
  CHECK(budget.refusals_to_log(t0) == 1);  // the first one at once
  for (int i = 0; i < 5; ++i) CHECK_FALSE(budget.reservation().grow(11));
  CHECK(budget.refusals_to_log(t0 + 1s) == 0);   // within the minute: quiet
  CHECK(budget.refusals_to_log(t0 + 59s) == 0);
  CHECK(budget.refusals_to_log(t0 + 60s) == 5);  // then the five since
  CHECK(budget.refusals_to_log(t0 + 200s) == 0); // nothing new to say
  budget.count_refusal();
  CHECK(budget.refusals_to_log(t0 + 201s) == 1);
  CHECK(budget.refusals() == 7);
}

TEST_CASE("MessageMemoryBudget: concurrent growth never exceeds the limit, and all is given back") {
  constexpr uint64_t kLimit = 64 * 1024;
  MessageMemoryBudget budget(kLimit);
  std::atomic<uint64_t> granted{0}, refused{0};
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 500; ++round) {
        Reservation r = budget.reservation();
        // Up to 100 steps of ~1 KiB: more than the limit even alone, so every
        // thread meets refusals whether or not the threads overlap.
        for (int step = 0; step < 100; ++step) {
          if (r.grow(1024 + 128 * static_cast<uint64_t>(t))) {
            ++granted;
          } else {
            ++refused;
            break;
          }
          if (budget.used() > kLimit) over = true;
        }
        if (round % 3 == 0) r.shrink(r.bytes() / 2);
      }  // r destroyed: everything back
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK_FALSE(over.load());
  CHECK(budget.used() == 0);
  CHECK(budget.peak() <= kLimit);
  CHECK(granted.load() > 0);
  CHECK(refused.load() > 0);
  CHECK(budget.refusals() == refused.load());
}

}  // namespace
}  // namespace holdd::smtp
