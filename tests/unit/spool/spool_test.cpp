#include "holdd/spool/spool.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include <lmdb.h>

#include "holdd/base/clock.h"
#include "holdd/spool/keys.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace holdd {
namespace {

namespace fs = std::filesystem;

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <class F>
void run(F body) {
  net::io_context io;
  std::exception_ptr error;
  net::co_spawn(io, body(io), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

std::unique_ptr<Spool> open_spool(const TempDir& dir, net::io_context& io,
                                  MailboxState initial = MailboxState::kHeld,
                                  uint64_t map_size = 1ull << 24,
                                  std::optional<bool> preallocate = std::nullopt) {
  SpoolOptions options;
  options.path = dir.path.string();
  options.initial_state = initial;
  options.initial_map_size = map_size;
  options.preallocate = preallocate;
  auto spool = Spool::open(options, io.get_executor());
  REQUIRE(spool.ok());
  return std::move(*spool);
}

// Commits the spool's journaled puts, so that reads see them, from outside a coroutine.
void sync_now(net::io_context& io, Spool& spool) {
  Status status = Status::io_error("sync did not run");
  io.restart();
  net::co_spawn(io, [&]() -> net::awaitable<void> { status = co_await spool.sync(); }, net::detached);
  io.run();
  REQUIRE(status.is_ok());
}

// Plain helpers: g++ 12 rejects braced initializer lists inside coroutine bodies
// ("array used as initializer"), so the lists are built out here.
const std::vector<std::string> kAnnaAndBob = {"anna@example.com", "bob@example.com"};
const std::vector<std::string> kAnna = {"anna@example.com"};
const std::vector<MailboxState> kTwoHeld = {MailboxState::kHeld, MailboxState::kHeld};

IncomingMessage message(Spool& spool, std::string sender, std::vector<std::string> mailboxes,
                        std::string content = "Subject: t\r\n\r\nbody\r\n") {
  IncomingMessage m;
  m.meta.id = spool.new_id();
  m.meta.sender = std::move(sender);
  m.meta.received_size = content.size();
  for (auto& mb : mailboxes) m.recipients.push_back(QueuedRecipient{mb, mb, "", ""});
  m.content = std::move(content);
  return m;
}

TEST_CASE("Spool: a mailbox's queue comes back in arrival order, once per recipient mailbox") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    for (int n = 0; n < 5; ++n) {
      auto r = co_await spool->put(message(*spool, "s" + std::to_string(n) + "@x.test",
                                           kAnnaAndBob));
      REQUIRE(r.ok());
      CHECK(r->states == kTwoHeld);
    }
    REQUIRE((co_await spool->sync()).is_ok());  // reads see LMDB, puts may be journaled
    for (const std::string& mb : kAnnaAndBob) {
      auto q = spool->queue(mb);
      REQUIRE(q.size() == 5);
      for (int n = 0; n < 5; ++n) CHECK(q[n].sender == "s" + std::to_string(n) + "@x.test");
      CHECK(spool->totals(mb).messages == 5);
    }
    CHECK(spool->stats().messages == 5);  // the body is stored once for both mailboxes
  });
}

TEST_CASE("Spool: what was committed survives close and reopen, and IDs keep growing") {
  TempDir dir;
  std::string first_id;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto m = message(*spool, "a@x.test", kAnna);
    first_id = m.meta.id;
    REQUIRE((co_await spool->put(std::move(m))).ok());
    auto t = co_await spool->set_state(kAnna, MailboxState::kMigrated, "test");
    REQUIRE(t.ok());
    CHECK(t->at(0).changed());
  });
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 1);
    CHECK(q[0].id == first_id);
    CHECK(*spool->content(first_id) == "Subject: t\r\n\r\nbody\r\n");
    CHECK(spool->mailbox("anna@example.com").state == MailboxState::kMigrated);
    CHECK(spool->mailbox("anna@example.com").history.size() == 1);
    CHECK(spool->totals("anna@example.com").messages == 1);
    CHECK(spool->new_id() > first_id);
    co_return;
  });
}

TEST_CASE("Spool: delivered removes the entry and the body with the last reference") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto m = message(*spool, "a@x.test", kAnnaAndBob);
    std::string id = m.meta.id;
    REQUIRE((co_await spool->put(std::move(m))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    auto head = spool->head("anna@example.com");
    REQUIRE(head);
    REQUIRE((co_await spool->delivered(*head, UpstreamKind::kNew, "250 ok")).is_ok());
    CHECK(spool->queue("anna@example.com").empty());
    CHECK(spool->content(id).ok());  // bob still needs it
    CHECK(spool->last_relay_us(UpstreamKind::kNew) > 0);
    CHECK(spool->last_relay_us(UpstreamKind::kOld) == 0);
    REQUIRE((co_await spool->delivered(*spool->head("bob@example.com"), UpstreamKind::kNew, "250")).is_ok());
    CHECK(!spool->content(id).ok());
    CHECK(spool->all_totals().empty());
    CHECK(spool->mailbox("anna@example.com").delivered == 1);
  });
}

// Issue 16: the relay removes a mailbox's accepted entries in batches, and reads
// the head past those whose removal is still committing.
TEST_CASE("Spool: head() skips given seqs; delivered() removes several entries in one write") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    for (int n = 0; n < 4; ++n) {
      REQUIRE((co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnna))).ok());
    }
    REQUIRE((co_await spool->sync()).is_ok());
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 4);
    CHECK(spool->head("anna@example.com", {q[0].seq, q[1].seq})->sender == "2@x.test");
    CHECK(spool->head("anna@example.com", {q[1].seq})->sender == "0@x.test");
    std::vector<AcceptedDelivery> batch;
    batch.push_back(AcceptedDelivery{q[0], UpstreamKind::kNew, "250 first"});
    batch.push_back(AcceptedDelivery{q[1], UpstreamKind::kNew, "250 second"});
    const uint64_t messages_before = spool->stats().messages;
    REQUIRE((co_await spool->delivered(std::move(batch))).is_ok());
    CHECK(messages_before == 4);
    CHECK(spool->stats().messages == 2);
    CHECK(spool->head("anna@example.com")->sender == "2@x.test");
    CHECK(spool->totals("anna@example.com").messages == 2);
    MailboxRecord r = spool->mailbox("anna@example.com");
    CHECK(r.delivered == 2);
    CHECK(r.last_delivery == "new: 250 second");
    // An entry already gone (dropped meanwhile) is no error; the rest is removed.
    std::vector<AcceptedDelivery> again;
    again.push_back(AcceptedDelivery{q[1], UpstreamKind::kNew, "250 again"});
    again.push_back(AcceptedDelivery{q[2], UpstreamKind::kNew, "250 third"});
    REQUIRE((co_await spool->delivered(std::move(again))).is_ok());
    CHECK(spool->queue("anna@example.com").size() == 1);
    CHECK(spool->mailbox("anna@example.com").delivered == 3);
  });
}

TEST_CASE("Spool: a parked entry is skipped by head() until requeue") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    REQUIRE((co_await spool->put(message(*spool, "1@x.test", kAnna))).ok());
    REQUIRE((co_await spool->put(message(*spool, "2@x.test", kAnna))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    auto first = *spool->head("anna@example.com");
    REQUIRE((co_await spool->parked(first, "550 no")).is_ok());
    CHECK(spool->head("anna@example.com")->sender == "2@x.test");
    CHECK(spool->totals("anna@example.com").parked == 1);
    auto n = co_await spool->requeue(std::nullopt);
    REQUIRE(n.ok());
    CHECK(*n == 1);
    CHECK(spool->head("anna@example.com")->sender == "1@x.test");
    CHECK(spool->head("anna@example.com")->attempts == 1);
    CHECK(spool->totals("anna@example.com").parked == 0);
  });
}

TEST_CASE("Spool: concurrent puts share commits (group commit) and all land in order") {
  TempDir dir;
  net::io_context io;
  auto spool = open_spool(dir, io);
  constexpr int kWriters = 50;
  int done = 0;
  for (int n = 0; n < kWriters; ++n) {
    net::co_spawn(io, [&, n]() -> net::awaitable<void> {
      auto r = co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnna));
      CHECK(r.ok());
      ++done;
    }, net::detached);
  }
  io.run();
  CHECK(done == kWriters);
  sync_now(io, *spool);
  auto q = spool->queue("anna@example.com");
  CHECK(q.size() == kWriters);
  for (size_t i = 1; i < q.size(); ++i) CHECK(q[i - 1].seq < q[i].seq);
}

TEST_CASE("Spool: a full LMDB map grows instead of refusing mail") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, MailboxState::kHeld, /*map_size=*/1ull << 20);
    std::string big(3u << 20, 'x');
    auto r = co_await spool->put(message(*spool, "a@x.test", kAnna, big));
    REQUIRE(r.ok());
    CHECK(spool->stats().map_size > (3u << 20));
    CHECK(spool->content(spool->head("anna@example.com")->id)->size() == big.size());
  });
}

TEST_CASE("Spool: preallocate = true keeps the data file allocated ahead of LMDB's last page, and all of it survives reopen") {
  TempDir dir;
  const fs::path data = dir.path / "data.mdb";
  const std::string kFill(8000, 'm');
  uint64_t used = 0;
  const bool kPreallocate = true;  // off by default with the journal
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, MailboxState::kHeld, /*map_size=*/1ull << 26, kPreallocate);
    for (int n = 0; n < 200; ++n) {
      REQUIRE((co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnna, kFill))).ok());
    }
    REQUIRE((co_await spool->sync()).is_ok());
    used = spool->stats().map_used;
  });
  // The writer tops the file up after each batch: at least one 4 MiB step of
  // written zeros beyond the pages LMDB uses, so commits overwrite, not append.
  CHECK(fs::file_size(data) >= used + (4u << 20));
  for (int round = 1; round <= 2; ++round) {
    run([&](net::io_context& io) -> net::awaitable<void> {
      auto spool = open_spool(dir, io, MailboxState::kHeld, /*map_size=*/1ull << 26, kPreallocate);
      auto q = spool->queue("anna@example.com");
      REQUIRE(q.size() == static_cast<size_t>(200 * round));
      for (size_t i = 0; i < q.size(); ++i) {
        CHECK(q[i].sender == std::to_string(i) + "@x.test");
        CHECK(*spool->content(q[i].id) == kFill);
      }
      // The next messages land in the preallocated pages.
      for (int n = 0; n < 200; ++n) {
        std::string sender = std::to_string(200 * round + n) + "@x.test";
        REQUIRE((co_await spool->put(message(*spool, sender, kAnna, kFill))).ok());
      }
    });
  }
}

TEST_CASE("Spool: preallocate = false (and the default, with the journal) leaves the data file at what LMDB wrote") {
  for (const char* setting : {"false", "default"}) {
    CAPTURE(std::string(setting));
    TempDir dir;
    uint64_t used = 0;
    std::optional<bool> preallocate;
    if (std::string_view(setting) == "false") preallocate = false;
    run([&](net::io_context& io) -> net::awaitable<void> {
      auto spool = open_spool(dir, io, MailboxState::kHeld, /*map_size=*/1ull << 26, preallocate);
      for (int n = 0; n < 50; ++n) {
        REQUIRE((co_await spool->put(message(*spool, "a@x.test", kAnna, std::string(8000, 'm')))).ok());
      }
      REQUIRE((co_await spool->sync()).is_ok());
      used = spool->stats().map_used;
    });
    CHECK(fs::file_size(dir.path / "data.mdb") <= used);
  }
}

TEST_CASE("Spool: drop removes every entry of a message") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto m = message(*spool, "a@x.test", kAnnaAndBob);
    std::string id = m.meta.id;
    REQUIRE((co_await spool->put(std::move(m))).ok());
    auto dropped = co_await spool->drop(std::vector<std::string>(1, id));
    REQUIRE(dropped.ok());
    CHECK(dropped->size() == 2);
    CHECK(spool->entries_of(id).empty());
    CHECK(!spool->meta(id).ok());
  });
}

// In a child process: opens the spool with a long journal commit delay, puts
// `count` messages for anna (senders first..first+count-1), and dies without
// closing the spool, as a SIGKILL would leave it: the puts were answered from the
// journal and none is committed to LMDB.
void put_then_die(const TempDir& dir, int first, int count,
                  const std::function<void(SpoolOptions&)>& tweak = {}) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    net::io_context io;
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    options.journal_commit_delay_us = 60'000'000;
    if (tweak) tweak(options);
    auto spool = Spool::open(options, io.get_executor());
    if (!spool.ok()) ::_exit(2);
    int ok = 0;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
      for (int n = first; n < first + count; ++n) {
        auto r = co_await (*spool)->put(message(**spool, std::to_string(n) + "@x.test", kAnnaAndBob));
        if (r.ok()) ++ok;
      }
    }, net::detached);
    io.run();
    ::_exit(ok == count ? 0 : 3);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
}

TEST_CASE("Spool: puts answered from the journal survive a crash before their LMDB commit") {
  TempDir dir;
  put_then_die(dir, 0, 30);
  CHECK(fs::file_size(dir.path / "journal") > 0);
  // The first open recovers the 30 from the journal; a second crash after 20 more
  // must not replay the first 30 again (they are in LMDB now).
  uint64_t seq_before = 0;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 30);
    for (size_t i = 0; i < q.size(); ++i) CHECK(q[i].sender == std::to_string(i) + "@x.test");
    CHECK(spool->queue("bob@example.com").size() == 30);
    CHECK(spool->totals("anna@example.com").messages == 30);
    seq_before = q.back().seq;
    co_return;
  });
  put_then_die(dir, 30, 20);
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 50);
    for (size_t i = 0; i < q.size(); ++i) {
      CHECK(q[i].sender == std::to_string(i) + "@x.test");
      if (i > 0) CHECK(q[i - 1].seq < q[i].seq);
    }
    CHECK(q[30].seq > seq_before);
    CHECK(spool->stats().messages == 50);  // one body per message, none twice
    // A put after recovery goes on from there, and delivery works on recovered mail.
    REQUIRE((co_await spool->put(message(*spool, "50@x.test", kAnna))).ok());
    REQUIRE((co_await spool->delivered(q[0], UpstreamKind::kNew, "250 ok")).is_ok());
    auto after = spool->queue("anna@example.com");
    REQUIRE(after.size() == 50);
    CHECK(after.front().sender == "1@x.test");
    CHECK(after.back().sender == "50@x.test");
  });
}

TEST_CASE("Spool: when LMDB cannot take more, puts are refused and the acknowledged ones, only journaled, are kept") {
  TempDir dir;
  std::vector<std::string> acked;
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 20;  // and it cannot grow
    options.max_map_size = 1ull << 20;
    options.journal_commit_delay_us = 60'000'000;  // journaled puts stay out of LMDB
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    const std::string body(20000, 'x');
    bool refused = false;
    for (int n = 0; n < 200 && !refused; ++n) {
      IncomingMessage m = message(*spool, std::to_string(n) + "@x.test", kAnna, body);
      std::string id = m.meta.id;
      auto r = co_await spool->put(std::move(m));
      if (r.ok()) {
        acked.push_back(id);
      } else {
        CHECK(r.status().code() == Status::Code::kNoSpace);
        refused = true;
      }
    }
    REQUIRE(refused);
    REQUIRE(!acked.empty());
    // A small one now: it is not acknowledged from the journal alone while LMDB
    // fails. It goes through an LMDB commit with every put waiting before it:
    // refused (kNoSpace) if they do not fit, or committed with them, so that reads
    // see all of it at once (a journaled put is not visible before its commit).
    IncomingMessage small = message(*spool, "small@x.test", kAnna);
    std::string small_id = small.meta.id;
    auto stored = co_await spool->put(std::move(small));
    if (stored.ok()) {
      acked.push_back(small_id);
      CHECK(spool->queue("anna@example.com").size() == acked.size());
    } else {
      CHECK(stored.status().code() == Status::Code::kNoSpace);
    }
  });
  // With room again every acknowledged message is there, in order, once.
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, MailboxState::kHeld, /*map_size=*/1ull << 26);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == acked.size());
    for (size_t i = 0; i < q.size(); ++i) CHECK(q[i].id == acked[i]);
    co_return;
  });
}

TEST_CASE("Spool: a journaled put is seen by reads and the dispatcher's observer after its commit") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    options.journal_commit_delay_us = 60'000'000;  // only sync() commits
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    std::vector<std::string> woken;
    spool->on_queued([&](const std::vector<std::string>& mailboxes) {
      woken.insert(woken.end(), mailboxes.begin(), mailboxes.end());
    });
    REQUIRE((co_await spool->put(message(*spool, "a@x.test", kAnna))).ok());
    CHECK(spool->queue("anna@example.com").empty());  // journaled, not in LMDB yet
    REQUIRE((co_await spool->sync(std::chrono::seconds(5))).is_ok());
    CHECK(spool->queue("anna@example.com").size() == 1);
    CHECK(spool->totals("anna@example.com").messages == 1);
    co_await net::post(io, net::use_awaitable);  // the observer is posted to the executor
    CHECK(woken == kAnna);
  });
}

// The benchmarks' switches (SpoolOptions::journal, max_batch; holdd reads them from
// HOLDD_SPOOL_*): without the journal every put is in LMDB when it completes.
TEST_CASE("Spool: with journal = false and max_batch = 1, each put is committed to LMDB before it completes") {
  TempDir dir;
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    options.journal_commit_delay_us = 60'000'000;  // a journaled put would stay out of LMDB
    options.journal = false;
    options.max_batch = 1;
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    REQUIRE((co_await spool->put(message(*spool, "0@x.test", kAnna))).ok());
    CHECK(spool->queue("anna@example.com").size() == 1);  // no sync() needed
    int finished = 0, stored = 0;
    for (int n = 1; n <= 5; ++n) {
      net::co_spawn(io, [&, n]() -> net::awaitable<void> {
        auto r = co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnna));
        stored += r.ok() ? 1 : 0;
        ++finished;
      }, net::detached);
    }
    net::steady_timer timer(io);
    while (finished < 5) {
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(net::use_awaitable);
    }
    CHECK(stored == 5);
    CHECK(spool->queue("anna@example.com").size() == 6);
    CHECK(fs::file_size(dir.path / "journal") > 0);  // opened (and recovered) all the same
  });
}

// Issue 12: a journal append that failed (write or fdatasync) used up sequence
// numbers that the following LMDB commit did not record when no journaled batch
// was waiting; the next records started at offset 0 with a number recovery never
// reached, and every message acknowledged from them was lost at the next crash.
TEST_CASE("Spool: after a failed journal append, every acknowledged message survives a crash, once") {
  for (int failing : {1, 3}) {  // the first append (nothing waiting), or one with puts waiting
    CAPTURE(failing);
    TempDir dir;
    put_then_die(dir, 0, 12, [failing](SpoolOptions& options) {
      options.journal_sync_fails = [failing, n = 0]() mutable { return ++n == failing; };
    });
    run([&](net::io_context& io) -> net::awaitable<void> {
      auto spool = open_spool(dir, io);
      auto q = spool->queue("anna@example.com");
      REQUIRE(q.size() == 12);
      for (size_t i = 0; i < q.size(); ++i) CHECK(q[i].sender == std::to_string(i) + "@x.test");
      CHECK(spool->stats().messages == 12);
      co_return;
    });
    // And again after more journaled puts and a second crash.
    put_then_die(dir, 12, 5);
    run([&](net::io_context& io) -> net::awaitable<void> {
      auto spool = open_spool(dir, io);
      auto q = spool->queue("anna@example.com");
      REQUIRE(q.size() == 17);
      for (size_t i = 0; i < q.size(); ++i) CHECK(q[i].sender == std::to_string(i) + "@x.test");
      co_return;
    });
  }
}

// Writes a queue entry straight into data.mdb, as a spool that disagrees with its
// journal would hold it.
void squat_queue_key(const TempDir& dir, const std::string& mailbox, uint64_t seq) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == MDB_SUCCESS);
  mdb_env_set_maxdbs(env, 8);
  mdb_env_set_mapsize(env, 1ull << 24);
  REQUIRE(mdb_env_open(env, dir.path.c_str(), MDB_NOTLS, 0600) == MDB_SUCCESS);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == MDB_SUCCESS);
  MDB_dbi dbi = 0;
  REQUIRE(mdb_dbi_open(txn, "queue", 0, &dbi) == MDB_SUCCESS);
  QueueEntry e;
  e.id = "FFFFFFFFFFFFFF";
  e.sender = "squatter@x.test";
  std::string key = keys::queue_key(mailbox, seq), value = encode(e);
  MDB_val k{key.size(), key.data()}, v{value.size(), value.data()};
  REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == MDB_SUCCESS);
  REQUIRE(mdb_txn_commit(txn) == MDB_SUCCESS);
  mdb_env_close(env);
}

TEST_CASE("Spool: journal recovery never overwrites a queue entry that another message holds") {
  TempDir dir;
  put_then_die(dir, 0, 3);  // journaled as anna's entries 1, 3, 5 (bob has 2, 4, 6)
  squat_queue_key(dir, "anna@example.com", 1);
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 4);
    CHECK(q[0].sender == "squatter@x.test");  // kept
    CHECK(q[1].sender == "1@x.test");
    CHECK(q[2].sender == "2@x.test");
    CHECK(q[3].sender == "0@x.test");  // the displaced one: kept, after every other entry
    CHECK(q[3].seq > q[2].seq);
    CHECK(spool->queue("bob@example.com").size() == 3);
    // A put afterwards takes a sequence after the displaced one.
    REQUIRE((co_await spool->put(message(*spool, "3@x.test", kAnna))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    auto after = spool->queue("anna@example.com");
    REQUIRE(after.size() == 5);
    CHECK(after.back().sender == "3@x.test");
  });
}

// Issue 12: with journaled puts waiting and LMDB unable to commit (disk full), the
// writer retried at once, forever: a spinning thread and a log line per try.
TEST_CASE("Spool: while LMDB commits fail the writer backs off, and commits once it can") {
  TempDir dir;
  std::atomic<bool> failing{false};
  std::atomic<int> tries{0};
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    // Long enough that the three puts below are all journaled (acknowledged)
    // before the first LMDB commit is due.
    options.journal_commit_delay_us = 300'000;
    options.lmdb_commit_error = [&]() -> int {
      if (!failing.load()) return MDB_SUCCESS;
      ++tries;
      return ENOSPC;
    };
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    failing = true;
    // Journaled: acknowledged although LMDB cannot take it now.
    REQUIRE((co_await spool->put(message(*spool, "a@x.test", kAnna))).ok());
    net::steady_timer timer(io, std::chrono::milliseconds(600));
    co_await timer.async_wait(net::use_awaitable);
    CHECK(tries.load() >= 2);   // it does retry
    CHECK(tries.load() <= 12);  // 10, 20, 40, ... ms: not thousands
    CHECK(spool->healthy(std::chrono::seconds(30)));  // failing is not stuck
    failing = false;
    timer.expires_after(std::chrono::milliseconds(1500));  // the next retry is at most 1 s away
    co_await timer.async_wait(net::use_awaitable);
    CHECK(spool->queue("anna@example.com").size() == 1);
  });
}

TEST_CASE("Spool: after MDB_PANIC every write fails, on_fatal runs once, and a restart recovers the journal") {
  TempDir dir;
  std::atomic<bool> panic{false};
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    options.journal_commit_delay_us = 60'000'000;
    options.lmdb_commit_error = [&] { return panic.load() ? MDB_PANIC : MDB_SUCCESS; };
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    int fatal_calls = 0;
    spool->on_fatal([&](const Status&) { ++fatal_calls; });
    REQUIRE((co_await spool->put(message(*spool, "a@x.test", kAnna))).ok());  // journaled
    panic = true;
    CHECK_FALSE((co_await spool->sync()).is_ok());
    CHECK_FALSE((co_await spool->put(message(*spool, "b@x.test", kAnna))).ok());
    CHECK_FALSE((co_await spool->sync()).is_ok());
    co_await net::post(io, net::use_awaitable);  // on_fatal is posted to the executor
    CHECK(fatal_calls == 1);
    CHECK_FALSE(spool->healthy(std::chrono::seconds(30)));
  });
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io);
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 1);
    CHECK(q[0].sender == "a@x.test");
    co_return;
  });
}

// The counters status and /metrics read (no queue walk) must agree with what a
// scan of LMDB finds: the same writes, then a reopen, which rebuilds them by a scan.
TEST_CASE("Spool: the in-memory queue counters agree with a rebuild from LMDB after every kind of write") {
  TempDir dir;
  std::map<std::string, QueueTotals> live;
  Backlog live_backlog;
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, MailboxState::kOld);
    for (int n = 0; n < 6; ++n) {
      REQUIRE((co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnnaAndBob))).ok());
    }
    REQUIRE((co_await spool->sync()).is_ok());
    auto q = spool->queue("anna@example.com");
    REQUIRE(q.size() == 6);
    REQUIRE((co_await spool->deferred(q[0], "451 later", 0)).is_ok());
    REQUIRE((co_await spool->deferred(q[0], "451 later", 0)).is_ok());
    REQUIRE((co_await spool->parked(q[1], "550 no")).is_ok());
    REQUIRE((co_await spool->deferred(q[2], "451 later", 0)).is_ok());
    REQUIRE((co_await spool->parked(q[2], "550 no")).is_ok());
    REQUIRE((co_await spool->delivered(q[3], UpstreamKind::kOld, "250 ok")).is_ok());
    REQUIRE((co_await spool->parked(q[4], "550 no")).is_ok());
    REQUIRE((co_await spool->requeue(std::string("anna@example.com"))).ok());
    REQUIRE((co_await spool->parked(q[4], "550 again")).is_ok());
    auto bob = spool->queue("bob@example.com");
    std::vector<std::string> ids = {bob[5].id};
    REQUIRE((co_await spool->drop(ids)).ok());
    // anna: 0 deferred twice, 1 parked then requeued, 2 deferred, parked and
    // requeued, 3 delivered, 4 parked, requeued and parked again, 5 dropped.
    live = spool->all_totals();
    CHECK(live.at("anna@example.com").messages == 4);
    CHECK(live.at("anna@example.com").parked == 1);
    CHECK(live.at("anna@example.com").deferred == 3);  // 0, 1, 2: tried, not parked
    live_backlog = spool->unparked_before("anna@example.com", now_unix_micros() + 1);
    CHECK(live_backlog.count == 3);
  });
  run([&](net::io_context& io) -> net::awaitable<void> {
    auto spool = open_spool(dir, io, MailboxState::kOld);
    auto rebuilt = spool->all_totals();
    REQUIRE(rebuilt.size() == live.size());
    for (const auto& [name, t] : live) {
      CAPTURE(name);
      CHECK(rebuilt.at(name).messages == t.messages);
      CHECK(rebuilt.at(name).bytes == t.bytes);
      CHECK(rebuilt.at(name).parked == t.parked);
      CHECK(rebuilt.at(name).deferred == t.deferred);
      CHECK(rebuilt.at(name).oldest_arrival_us == t.oldest_arrival_us);
    }
    Backlog b = spool->unparked_before("anna@example.com", now_unix_micros() + 1);
    CHECK(b.count == live_backlog.count);
    CHECK(b.oldest_arrival_us == live_backlog.oldest_arrival_us);
    co_return;
  });
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A map that cannot grow fails the commit before LMDB's commit error path: the
// writer must back off then too, not retry the journaled puts in a loop (a
// spinning writer thread burning a core while the disk is full).
TEST_CASE("Spool: with journaled puts waiting and a map that cannot grow, the writer does not spin") {
  TempDir dir;
  std::atomic<bool> full{false};
  std::atomic<int> commits_tried{0};
  run([&](net::io_context& io) -> net::awaitable<void> {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 20;
    options.max_map_size = 1ull << 20;  // cannot grow
    // Long enough that the three puts below are all journaled (acknowledged)
    // before the first LMDB commit is due.
    options.journal_commit_delay_us = 300'000;
    options.lmdb_commit_error = [&]() -> int {
      if (!full.load()) return MDB_SUCCESS;
      commits_tried.fetch_add(1);
      return MDB_MAP_FULL;
    };
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    auto spool = std::move(*opened);
    full = true;
    // Journaled: acknowledged, waiting for an LMDB commit that cannot happen.
    for (int n = 0; n < 3; ++n) {
      CHECK((co_await spool->put(message(*spool, std::to_string(n) + "@x.test", kAnna, "body"))).ok());
    }
    const double before = cpu_seconds();
    net::steady_timer timer(io, std::chrono::milliseconds(1000));
    co_await timer.async_wait(net::use_awaitable);
    // With backoff (10 ms doubling from the first try at 0.3 s): about 7 tries. A
    // spinning writer makes thousands and burns the 0.7 s after the first.
    CHECK(commits_tried.load() <= 12);
    CHECK(cpu_seconds() - before < 0.3);
    full = false;
  });
}

}  // namespace
}  // namespace holdd
