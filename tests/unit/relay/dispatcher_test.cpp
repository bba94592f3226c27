// The Dispatcher between a real spool (LMDB in a temporary directory, with its
// fault-injection seam) and a real upstream (aiosmtpd through smtp_peer.py).
#include "holdd/relay/dispatcher.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "upstream_peer.h"

namespace holdd {
namespace {

using namespace test_peer;

// Polls `done` every 50 ms for at most `limit`; returns whether it became true.
net::awaitable<bool> eventually(std::function<bool()> done, std::chrono::milliseconds limit) {
  net::steady_timer timer(co_await net::this_coro::executor);
  for (auto waited = 0ms; waited < limit; waited += 50ms) {
    if (done()) co_return true;
    timer.expires_after(50ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  co_return done();
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  co_await timer.async_wait(net::use_awaitable);
}

// A spool in `dir` whose LMDB commits call `commit_hook` first (on the writer
// thread; a non-zero LMDB code is reported instead of committing).
std::unique_ptr<Spool> open_spool(net::io_context& io, const TempDir& dir,
                                  std::function<int()> commit_hook) {
  SpoolOptions options;
  options.path = dir.path().string();
  options.initial_state = MailboxState::kOld;
  options.initial_map_size = 1ull << 24;
  options.lmdb_commit_error = std::move(commit_hook);
  auto opened = Spool::open(options, io.get_executor());
  REQUIRE(opened.ok());
  return std::move(*opened);
}

// `pipeline`: [delivery] pipeline; most tests here are about the pipelined relay.
Config config_for(const Peer& peer, uint32_t pipeline = 16) {
  Config config;
  config.delivery.pipeline = pipeline;
  config.server.hostname = "holdd.test";
  UpstreamConfig upstream;
  upstream.name = "old";
  upstream.host = "127.0.0.1";
  upstream.port = peer.port();
  upstream.tls = UpstreamTls::kNone;
  upstream.connect_timeout = 5s;
  upstream.command_timeout = 5s;
  config.upstream_old = upstream;
  config.delivery.retry_min = 1s;
  config.delivery.retry_max = 2s;
  return config;
}

// Queues messages with subjects m0, m1, ... for anna@ and commits them to LMDB.
net::awaitable<void> queue_messages(Spool& spool, int count) {
  for (int n = 0; n < count; ++n) {
    IncomingMessage m;
    m.meta.id = spool.new_id();
    m.meta.sender = "s@sender.test";
    m.content = "Subject: m" + std::to_string(n) + "\r\n\r\nbody " + std::to_string(n) + "\r\n";
    m.meta.received_size = m.content.size();
    m.recipients.push_back(QueuedRecipient{"anna@example.com", "anna@example.com", "", ""});
    REQUIRE((co_await spool.put(std::move(m))).ok());
  }
  REQUIRE((co_await spool.sync()).is_ok());
}

// Issue 16: the removal of an accepted message is committed while the next one is
// sent; the upstream's 2xx, not holdd's commit, is what the order waits for.
TEST_CASE("Dispatcher: the next message goes while the previous removal is still committing") {
  auto peer = Peer::aiosmtpd();
  TempDir spool_dir;
  std::atomic<bool> blocked{false};
  std::atomic<int> blocked_commits{0};
  net::io_context io;
  std::unique_ptr<Spool> spool = open_spool(io, spool_dir, [&]() -> int {
    if (blocked.load()) ++blocked_commits;
    while (blocked.load()) std::this_thread::sleep_for(1ms);  // a disk that takes its time
    return 0;
  });
  Dispatcher dispatcher(io.get_executor(), *spool, config_for(*peer));

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    co_await queue_messages(*spool, 3);
    blocked = true;  // the first removal's commit does not finish until released
    dispatcher.start();
    REQUIRE(co_await eventually([&] { return peer->messages() == 3; }, 10s));
    CHECK(blocked_commits.load() == 1);  // all three sent during the one commit
    CHECK(spool->queue("anna@example.com").size() == 3);  // nothing removed yet
    CHECK(dispatcher.activity("anna@example.com").removal_pending == 3);
    CHECK(dispatcher.removals_pending() == 3);
    CHECK(dispatcher.counters().delivered_old == 0);  // counted once removed
    blocked = false;
    CHECK(co_await eventually([&] { return spool->queue("anna@example.com").empty(); }, 10s));
    CHECK(co_await eventually([&] { return dispatcher.counters().delivered_old == 3; }, 5s));
    CHECK(dispatcher.removals_pending() == 0);
    co_await sleep_for(300ms);
    CHECK(peer->messages() == 3);
    for (int n = 1; n <= 3; ++n) {
      CHECK(peer->content(n).find("Subject: m" + std::to_string(n - 1) + "\r\n") != std::string::npos);
    }
    CHECK(spool->mailbox("anna@example.com").delivered == 3);
    co_await dispatcher.stop(2s);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

// [delivery] pipeline = 1 (the default): the next message waits for the previous
// one's durable removal, so a crash repeats at most the one accepted message.
TEST_CASE("Dispatcher: with pipeline = 1 the next message waits for the durable removal") {
  auto peer = Peer::aiosmtpd();
  TempDir spool_dir;
  std::atomic<bool> blocked{false};
  net::io_context io;
  std::unique_ptr<Spool> spool = open_spool(io, spool_dir, [&]() -> int {
    for (int i = 0; i < 3000 && blocked.load(); ++i) std::this_thread::sleep_for(1ms);  // a slow disk, 3 s at most
    return 0;
  });
  Dispatcher dispatcher(io.get_executor(), *spool, config_for(*peer, 1));

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    co_await queue_messages(*spool, 3);
    blocked = true;
    dispatcher.start();
    CHECK(co_await eventually([&] { return peer->messages() == 1; }, 10s));
    co_await sleep_for(500ms);
    CHECK(peer->messages() == 1);  // m1 waits for m0's removal
    CHECK(dispatcher.activity("anna@example.com").removal_pending == 1);
    blocked = false;
    CHECK(co_await eventually([&] { return spool->queue("anna@example.com").empty(); }, 10s));
    CHECK(peer->messages() == 3);
    co_await dispatcher.stop(2s);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

// A clean stop writes every removal it has: what the upstream accepted, also what
// waited for the next batch while one was committing, is not sent again after the
// restart.
TEST_CASE("Dispatcher: stop() commits the removals still waiting") {
  auto peer = Peer::aiosmtpd();
  TempDir spool_dir;
  std::atomic<bool> blocked{false};
  net::io_context io;
  std::unique_ptr<Spool> spool = open_spool(io, spool_dir, [&]() -> int {
    while (blocked.load()) std::this_thread::sleep_for(1ms);
    return 0;
  });
  Dispatcher dispatcher(io.get_executor(), *spool, config_for(*peer));

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    co_await queue_messages(*spool, 3);
    blocked = true;
    dispatcher.start();
    REQUIRE(co_await eventually([&] { return peer->messages() == 3; }, 10s));
    CHECK(dispatcher.removals_pending() == 3);  // one write committing, two waiting
    net::steady_timer unblock(io, 300ms);
    unblock.async_wait([&](boost::system::error_code) { blocked = false; });
    co_await dispatcher.stop(2s);
    CHECK(spool->queue("anna@example.com").empty());
    CHECK(dispatcher.removals_pending() == 0);
    CHECK(spool->mailbox("anna@example.com").delivered == 3);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

// SPEC "Relay and replay": a 4xx keeps the mailbox's order. n's predecessor is
// accepted with its removal still pending when n is deferred: n+1 waits all the same.
TEST_CASE("Dispatcher: a 4xx on message n keeps n+1 back until n is accepted") {
  auto peer = Peer::aiosmtpd({"--defer-containing", "Subject: m1\r\n", "--defer-times", "2"});
  TempDir spool_dir;
  net::io_context io;
  std::unique_ptr<Spool> spool = open_spool(io, spool_dir, {});
  Dispatcher dispatcher(io.get_executor(), *spool, config_for(*peer));

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    co_await queue_messages(*spool, 3);
    dispatcher.start();
    REQUIRE(co_await eventually([&] { return peer->messages() == 3; }, 15s));
    CHECK(peer->attempts() == std::vector<std::string>{"accepted m0", "deferred m1", "deferred m1",
                                                       "accepted m1", "accepted m2"});
    CHECK(co_await eventually([&] { return spool->queue("anna@example.com").empty(); }, 5s));
    CHECK(dispatcher.counters().deferred == 2);
    co_await dispatcher.stop(2s);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

// A removal whose commit fails is retried, and the mailbox stops sending meanwhile:
// nothing already accepted is sent again, and nothing runs far ahead of the disk.
TEST_CASE("Dispatcher: a removal that fails is retried; nothing accepted is sent again") {
  auto peer = Peer::aiosmtpd();
  TempDir spool_dir;
  std::atomic<bool> failing{false};
  net::io_context io;
  std::unique_ptr<Spool> spool =
      open_spool(io, spool_dir, [&]() -> int { return failing.load() ? ENOSPC : 0; });
  Dispatcher dispatcher(io.get_executor(), *spool, config_for(*peer));

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    co_await queue_messages(*spool, 5);
    failing = true;
    dispatcher.start();
    REQUIRE(co_await eventually([&] { return peer->messages() >= 1; }, 10s));
    co_await sleep_for(2500ms);  // removals fail and are retried; retry_min passes twice
    const int sent = peer->messages();
    CHECK(sent < 5);  // the mailbox held back once its removals failed
    std::vector<std::string> attempts = peer->attempts();
    std::sort(attempts.begin(), attempts.end());
    CHECK(std::adjacent_find(attempts.begin(), attempts.end()) == attempts.end());  // none twice
    CHECK(spool->queue("anna@example.com").size() == 5);
    CHECK(dispatcher.activity("anna@example.com").removal_pending == static_cast<size_t>(sent));
    failing = false;
    CHECK(co_await eventually([&] { return spool->queue("anna@example.com").empty(); }, 15s));
    co_await sleep_for(300ms);
    CHECK(peer->attempts() == std::vector<std::string>{"accepted m0", "accepted m1", "accepted m2",
                                                       "accepted m3", "accepted m4"});
    CHECK(spool->mailbox("anna@example.com").delivered == 5);
    co_await dispatcher.stop(2s);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

// Issue 12: when the upstream's 250 could not be recorded, the entry stayed at the
// head and was delivered again every retry_min, forever.
TEST_CASE("Dispatcher: an accepted delivery that cannot be recorded is recorded later, never sent twice") {
  auto peer = Peer::aiosmtpd();
  TempDir spool_dir;
  std::atomic<bool> failing{false};
  net::io_context io;
  SpoolOptions options;
  options.path = spool_dir.path().string();
  options.initial_state = MailboxState::kOld;
  options.initial_map_size = 1ull << 24;
  options.lmdb_commit_error = [&]() -> int { return failing.load() ? ENOSPC : 0; };
  auto opened = Spool::open(options, io.get_executor());
  REQUIRE(opened.ok());
  std::unique_ptr<Spool> spool = std::move(*opened);

  Config config;
  config.server.hostname = "holdd.test";
  UpstreamConfig upstream;
  upstream.name = "old";
  upstream.host = "127.0.0.1";
  upstream.port = peer->port();
  upstream.tls = UpstreamTls::kNone;
  upstream.connect_timeout = 5s;
  upstream.command_timeout = 5s;
  config.upstream_old = upstream;
  config.delivery.retry_min = 1s;
  config.delivery.retry_max = 2s;
  Dispatcher dispatcher(io.get_executor(), *spool, config);

  bool finished = false;
  net::co_spawn(io, [&]() -> net::awaitable<void> {
    IncomingMessage m;
    m.meta.id = spool->new_id();
    m.meta.sender = "s@sender.test";
    m.content = "Subject: once\r\n\r\nonly once\r\n";
    m.meta.received_size = m.content.size();
    m.recipients.push_back(QueuedRecipient{"anna@example.com", "anna@example.com", "", ""});
    REQUIRE((co_await spool->put(std::move(m))).ok());
    REQUIRE((co_await spool->sync()).is_ok());
    failing = true;  // from now on no LMDB commit succeeds: the delivery cannot be recorded
    dispatcher.start();
    REQUIRE(co_await eventually([&] { return peer->messages() == 1; }, 10s));
    // Two retry_min periods: the old code delivered it again in each.
    co_await sleep_for(2500ms);
    CHECK(peer->messages() == 1);
    CHECK(spool->queue("anna@example.com").size() == 1);  // not recorded yet
    CHECK(dispatcher.activity("anna@example.com").removal_pending == 1);
    failing = false;
    CHECK(co_await eventually([&] { return spool->queue("anna@example.com").empty(); }, 10s));
    co_await sleep_for(1500ms);
    CHECK(peer->messages() == 1);
    CHECK(spool->mailbox("anna@example.com").delivered == 1);
    co_await dispatcher.stop(2s);
    finished = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  CHECK(finished);
}

}  // namespace
}  // namespace holdd
