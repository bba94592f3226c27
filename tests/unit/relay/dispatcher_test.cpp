// The Dispatcher between a real spool (LMDB in a temporary directory, with its
// fault-injection seam) and a real upstream (aiosmtpd through smtp_peer.py).
#include "holdd/relay/dispatcher.h"

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <functional>

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
    CHECK(dispatcher.activity("anna@example.com").in_flight);  // the mailbox waits (FIFO)
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
