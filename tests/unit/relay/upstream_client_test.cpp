// UpstreamClient against real upstreams started by each test: aiosmtpd (through
// smtp_peer.py beside this file, which records what it received) and Postfix's
// smtp-sink (pipelining, DSN, scripted 4xx/5xx). Every process is killed by its
// guard, whatever the test does.
#include "holdd/relay/upstream_client.h"

#include <doctest/doctest.h>

#include "upstream_peer.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>


namespace holdd {
namespace {

using namespace test_peer;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Outcome = DeliveryResult::Outcome;
using tcp = net::ip::tcp;

UpstreamConfig config_for(uint16_t port) {
  UpstreamConfig cfg;
  cfg.name = "test";
  cfg.host = "127.0.0.1";
  cfg.port = port;
  cfg.tls = UpstreamTls::kOpportunistic;
  cfg.connect_timeout = 5s;
  cfg.command_timeout = 5s;
  return cfg;
}

OutgoingMessage message(const std::string& content, std::string sender = "alice@sender.test",
                        std::string rcpt = "bob@example.com") {
  OutgoingMessage msg;
  msg.queue_id = "TESTQ1";
  msg.sender = std::move(sender);
  msg.rcpt = std::move(rcpt);
  msg.content = &content;
  return msg;
}

// Runs `body(executor)` to completion on a fresh io_context (the daemon's shape:
// co_spawn + run on this thread) and returns its value.
template <class F>
auto run(F&& body) {
  net::io_context ctx;
  using T = typename decltype(body(ctx.get_executor()))::value_type;
  std::optional<T> value;
  std::exception_ptr error;
  net::co_spawn(ctx, body(ctx.get_executor()), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value = std::move(v);
  });
  ctx.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

DeliveryResult deliver_once(const UpstreamConfig& cfg, const OutgoingMessage& msg) {
  return run([&](net::any_io_executor ex) -> net::awaitable<DeliveryResult> {
    UpstreamClient client(ex, cfg, "holdd.test");
    DeliveryResult r = co_await client.deliver(msg);
    co_await client.quit();
    co_return r;
  });
}

const std::string kTrickyContent =
    "Subject: dots\r\n"
    "\r\n"
    ".\r\n"                        // a lone dot: would end DATA if not stuffed
    "..two dots\r\n"
    ".leading dot\r\n"
    "trailing dot.\r\n"
    "\r\n"
    ".\r\n";

TEST_CASE("UpstreamClient: content arrives byte-identical, dot-stuffing undone by the upstream") {
  auto peer = Peer::aiosmtpd();
  const DeliveryResult r = deliver_once(config_for(peer->port()), message(kTrickyContent));
  CHECK(r.outcome == Outcome::kAccepted);
  CHECK(r.code == 250);
  CHECK(r.reply == "250 2.0.0 Ok: queued as Q1");
  REQUIRE(peer->messages() == 1);
  CHECK(peer->content(1) == kTrickyContent);
  const nlohmann::json env = peer->envelope(1);
  CHECK(env["mail_from"] == "alice@sender.test");
  CHECK(env["rcpt_tos"] == nlohmann::json::array({"bob@example.com"}));
  CHECK(env["tls"] == false);
}

TEST_CASE("UpstreamClient: content without a final CRLF gets one before the end of data") {
  auto peer = Peer::aiosmtpd();
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("Subject: x\r\n\r\nno end"));
  CHECK(r.outcome == Outcome::kAccepted);
  REQUIRE(peer->messages() == 1);
  CHECK(peer->content(1) == "Subject: x\r\n\r\nno end\r\n");
}

TEST_CASE("UpstreamClient: the null reverse-path is sent as MAIL FROM:<>") {
  auto peer = Peer::aiosmtpd();
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n", ""));
  CHECK(r.outcome == Outcome::kAccepted);
  REQUIRE(peer->messages() == 1);
  CHECK(peer->envelope(1)["mail_from"] == "<>");  // aiosmtpd records the null path so
}

TEST_CASE("UpstreamClient: two deliveries reuse one connection") {
  auto peer = Peer::aiosmtpd();
  const std::string first = "Subject: 1\r\n\r\none\r\n", second = "Subject: 2\r\n\r\ntwo\r\n";
  const bool open_between = run([&](net::any_io_executor ex) -> net::awaitable<bool> {
    UpstreamClient client(ex, config_for(peer->port()), "holdd.test");
    CHECK(!client.is_open());
    const DeliveryResult a = co_await client.deliver(message(first, "a@s.test", "x@example.com"));
    const bool open = client.is_open();
    const auto used = client.last_used();
    const DeliveryResult b = co_await client.deliver(message(second, "b@s.test", "y@example.com"));
    CHECK(a.accepted());
    CHECK(b.accepted());
    CHECK(client.last_used() >= used);
    co_await client.quit();
    CHECK(!client.is_open());
    co_return open;
  });
  CHECK(open_between);
  REQUIRE(peer->messages() == 2);
  CHECK(peer->envelope(1)["client_port"] == peer->envelope(2)["client_port"]);
  CHECK(peer->envelope(2)["mail_from"] == "b@s.test");
  CHECK(peer->envelope(2)["rcpt_tos"] == nlohmann::json::array({"y@example.com"}));
  CHECK(peer->content(1) == first);
  CHECK(peer->content(2) == second);
}

TEST_CASE("UpstreamClient: LMTP says LHLO and takes the per-recipient reply") {
  auto peer = Peer::aiosmtpd({"--lmtp"});
  UpstreamConfig cfg = config_for(peer->port());
  cfg.protocol = UpstreamProtocol::kLmtp;
  const DeliveryResult r = deliver_once(cfg, message(kTrickyContent));
  CHECK(r.outcome == Outcome::kAccepted);
  CHECK(r.reply == "250 2.0.0 delivered");
  REQUIRE(peer->messages() == 1);
  CHECK(peer->content(1) == kTrickyContent);
  CHECK(peer->envelope(1)["rcpt_tos"] == nlohmann::json::array({"bob@example.com"}));
}

TEST_CASE("UpstreamClient: connection refused is deferred with a readable reason") {
  const uint16_t port = free_port();  // nothing listens there
  const DeliveryResult r = deliver_once(config_for(port), message("a\r\n"));
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.code == 0);
  CHECK(r.reply == "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST_CASE("UpstreamClient: an upstream that never greets times out, deferred") {
  SilentListener silent;
  UpstreamConfig cfg = config_for(silent.port());
  cfg.command_timeout = 1s;
  const auto start = std::chrono::steady_clock::now();
  const DeliveryResult r = deliver_once(cfg, message("a\r\n"));
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply == "timeout waiting for greeting from 127.0.0.1:" + std::to_string(silent.port()));
  CHECK(std::chrono::steady_clock::now() - start < 4s);
}

TEST_CASE("UpstreamClient: a garbage greeting is deferred, never guessed at") {
  const DeliveryResult r = run([](net::any_io_executor ex) -> net::awaitable<DeliveryResult> {
    tcp::acceptor acceptor(ex, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const uint16_t port = acceptor.local_endpoint().port();
    net::co_spawn(
        ex,
        [&acceptor]() -> net::awaitable<void> {
          tcp::socket s = co_await acceptor.async_accept(net::use_awaitable);
          co_await net::async_write(s, net::buffer(std::string_view("hello there\r\n")),
                                    net::use_awaitable);
          char byte;
          co_await net::async_read(s, net::buffer(&byte, 1), net::use_awaitable);  // EOF ends it
        },
        [](std::exception_ptr) {});
    UpstreamClient client(ex, config_for(port), "holdd.test");
    static const std::string content = "a\r\n";
    DeliveryResult result = co_await client.deliver(message(content));
    CHECK(!client.is_open());
    co_return result;
  });
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply.find("garbage greeting") != std::string::npos);
}

TEST_CASE("UpstreamClient: 5xx to RCPT is rejected with the reply kept, and RSET keeps the connection") {
  auto peer = Peer::smtp_sink({"-f", "RCPT", "-B", "550 5.1.1 user unknown"});
  const std::string content = "a\r\n";
  const auto [first, second, open] =
      run([&](net::any_io_executor ex) -> net::awaitable<std::tuple<DeliveryResult, DeliveryResult, bool>> {
        UpstreamClient client(ex, config_for(peer->port()), "holdd.test");
        DeliveryResult a = co_await client.deliver(message(content));
        const bool still_open = client.is_open();
        DeliveryResult b = co_await client.deliver(message(content));
        co_await client.quit();
        co_return std::make_tuple(a, b, still_open);
      });
  CHECK(first.outcome == Outcome::kRejected);
  CHECK(first.code == 550);
  CHECK(first.reply == "550 5.1.1 user unknown");
  CHECK(open);
  CHECK(second.outcome == Outcome::kRejected);
  const std::string log = peer->output();
  CHECK(log.find("RSET") != std::string::npos);
  CHECK(log.find("DATA") == std::string::npos);  // nothing sent after the refusal
}

TEST_CASE("UpstreamClient: 4xx is deferred") {
  auto peer = Peer::smtp_sink({"-r", "MAIL"});
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n"));
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.code == 450);
  CHECK(r.reply == "450 4.3.0 Error: command failed");
}

TEST_CASE("UpstreamClient: 5xx after the content is rejected") {
  auto peer = Peer::aiosmtpd({"--data-reply", "554 5.7.1 looks like spam"});
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n"));
  CHECK(r.outcome == Outcome::kRejected);
  CHECK(r.reply == "554 5.7.1 looks like spam");
}

TEST_CASE("UpstreamClient: 5xx to RCPT through aiosmtpd") {
  auto peer = Peer::aiosmtpd({"--rcpt-reply", "550 5.1.1 no such user"});
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n"));
  CHECK(r.outcome == Outcome::kRejected);
  CHECK(r.code == 550);
  CHECK(peer->messages() == 0);
}

TEST_CASE("UpstreamClient: pipelined transactions with DSN parameters passed on") {
  auto peer = Peer::smtp_sink();  // offers PIPELINING and DSN
  std::string content = kTrickyContent;
  OutgoingMessage msg = message(content);
  msg.dsn_ret = "HDRS";
  msg.dsn_envid = "QQ314159";
  msg.dsn_notify = "SUCCESS,FAILURE";
  msg.dsn_orcpt = "rfc822;bob@example.com";
  const int accepted = run([&](net::any_io_executor ex) -> net::awaitable<int> {
    UpstreamClient client(ex, config_for(peer->port()), "holdd.test");
    int n = 0;
    for (int i = 0; i < 3; ++i) n += (co_await client.deliver(msg)).accepted() ? 1 : 0;
    co_await client.quit();
    co_return n;
  });
  CHECK(accepted == 3);
  const std::string log = peer->output();
  CHECK(log.find("MAIL FROM:<alice@sender.test> RET=HDRS ENVID=QQ314159") != std::string::npos);
  CHECK(log.find("RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com") !=
        std::string::npos);
  CHECK(log.find("EHLO holdd.test") != std::string::npos);
}

TEST_CASE("UpstreamClient: DSN parameters are dropped when the upstream lacks DSN") {
  auto peer = Peer::smtp_sink({"-N"});
  const std::string content = "a\r\n";
  OutgoingMessage msg = message(content);
  msg.dsn_ret = "FULL";
  msg.dsn_notify = "NEVER";
  CHECK(deliver_once(config_for(peer->port()), msg).accepted());
  const std::string log = peer->output();
  CHECK(log.find("MAIL FROM:<alice@sender.test>\n") != std::string::npos);
  CHECK(log.find("NOTIFY") == std::string::npos);
}

TEST_CASE("UpstreamClient: EHLO refused with 5xx falls back to HELO") {
  auto peer = Peer::smtp_sink({"-f", "EHLO"});
  const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n"));
  CHECK(r.outcome == Outcome::kAccepted);
  CHECK(peer->output().find("HELO holdd.test") != std::string::npos);
}

TEST_CASE("UpstreamClient: 8-bit mail to an upstream without 8BITMIME is deferred, not mangled") {
  auto peer = Peer::smtp_sink({"-8"});
  const std::string content = "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n";
  OutgoingMessage msg = message(content);
  msg.eight_bit = true;
  const DeliveryResult r = deliver_once(config_for(peer->port()), msg);
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply == "upstream does not offer 8BITMIME");
  CHECK(peer->output().find("MAIL FROM") == std::string::npos);
}

TEST_CASE("UpstreamClient: 8BITMIME and SMTPUTF8 are declared when offered") {
  auto peer = Peer::aiosmtpd({"--smtputf8"});
  const std::string content = "Subject: caf\xc3\xa9\r\n\r\n\xc3\xa9\r\n";
  OutgoingMessage msg = message(content, "j\xc3\xb6rg@sender.test");
  msg.eight_bit = true;
  msg.smtputf8 = true;
  const DeliveryResult r = deliver_once(config_for(peer->port()), msg);
  CHECK(r.outcome == Outcome::kAccepted);
  REQUIRE(peer->messages() == 1);
  CHECK(peer->content(1) == content);
  const nlohmann::json options = peer->envelope(1)["mail_options"];
  CHECK(options.dump().find("BODY=8BITMIME") != std::string::npos);
  CHECK(options.dump().find("SMTPUTF8") != std::string::npos);
}

TEST_CASE("UpstreamClient: SMTPUTF8 mail to an upstream without SMTPUTF8 is deferred") {
  auto peer = Peer::aiosmtpd();
  const std::string content = "a\r\n";
  OutgoingMessage msg = message(content);
  msg.smtputf8 = true;
  const DeliveryResult r = deliver_once(config_for(peer->port()), msg);
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply == "upstream does not offer SMTPUTF8");
  CHECK(peer->messages() == 0);
}

TEST_CASE("UpstreamClient: a message over the upstream's SIZE is rejected with 552 unsent") {
  auto peer = Peer::aiosmtpd({"--size", "100"});
  const std::string content(200, 'x');
  const DeliveryResult r = deliver_once(config_for(peer->port()), message(content));
  CHECK(r.outcome == Outcome::kRejected);
  CHECK(r.code == 552);
  CHECK(peer->messages() == 0);
}

TEST_CASE("UpstreamClient: tls = required to an upstream without STARTTLS is deferred, nothing sent") {
  auto peer = Peer::aiosmtpd();
  UpstreamConfig cfg = config_for(peer->port());
  cfg.tls = UpstreamTls::kRequired;
  const DeliveryResult r = deliver_once(cfg, message(kTrickyContent));
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply.find("does not offer STARTTLS") != std::string::npos);
  CHECK(peer->messages() == 0);
}

// A self-signed certificate for peer.test and 127.0.0.1, made with the openssl CLI.
struct TestCertificate {
  TempDir dir;
  fs::path cert = dir.path() / "cert.pem";
  fs::path key = dir.path() / "key.pem";
  TestCertificate() {
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=peer.test"
        " -addext subjectAltName=DNS:peer.test,IP:127.0.0.1 -keyout " + key.string() +
        " -out " + cert.string() + " >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
};

TEST_CASE("check_tls_settings: a CA file without a certificate is refused for tls = required") {
  TestCertificate tls;
  const fs::path garbage = tls.dir.path() / "garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  UpstreamConfig cfg = config_for(25);
  cfg.name = "new";
  cfg.tls = UpstreamTls::kRequired;
  cfg.ca_file = garbage.string();
  const Status bad = check_tls_settings(cfg);
  CHECK(!bad.is_ok());
  CHECK(bad.message().rfind("upstream.new.ca_file: cannot load CA file " + garbage.string(), 0) == 0);

  cfg.ca_file = tls.cert.string();
  CHECK(check_tls_settings(cfg).is_ok());

  cfg.ca_file = garbage.string();  // not used without tls = required
  cfg.tls = UpstreamTls::kOpportunistic;
  CHECK(check_tls_settings(cfg).is_ok());
}

TEST_CASE("UpstreamClient: STARTTLS with a verified certificate, opportunistic and required") {
  TestCertificate tls;
  auto peer = Peer::aiosmtpd({"--cert", tls.cert.string(), "--key", tls.key.string()});

  SUBCASE("required, CA file and tls_name") {
    UpstreamConfig cfg = config_for(peer->port());
    cfg.tls = UpstreamTls::kRequired;
    cfg.ca_file = tls.cert.string();
    cfg.tls_name = "peer.test";
    const DeliveryResult r = deliver_once(cfg, message(kTrickyContent));
    CHECK(r.outcome == Outcome::kAccepted);
    REQUIRE(peer->messages() == 1);
    CHECK(peer->envelope(1)["tls"] == true);
    CHECK(peer->content(1) == kTrickyContent);
  }
  SUBCASE("required, the IP address as name") {
    UpstreamConfig cfg = config_for(peer->port());
    cfg.tls = UpstreamTls::kRequired;
    cfg.ca_file = tls.cert.string();
    CHECK(deliver_once(cfg, message("a\r\n")).accepted());
    CHECK(peer->envelope(1)["tls"] == true);
  }
  SUBCASE("required, wrong name: deferred, nothing sent") {
    UpstreamConfig cfg = config_for(peer->port());
    cfg.tls = UpstreamTls::kRequired;
    cfg.ca_file = tls.cert.string();
    cfg.tls_name = "other.test";
    const DeliveryResult r = deliver_once(cfg, message("a\r\n"));
    CHECK(r.outcome == Outcome::kDeferred);
    CHECK(r.reply.find("hostname mismatch") != std::string::npos);
    CHECK(peer->messages() == 0);
  }
  SUBCASE("required, untrusted certificate: deferred") {
    UpstreamConfig cfg = config_for(peer->port());
    cfg.tls = UpstreamTls::kRequired;
    cfg.tls_name = "peer.test";  // system store: does not know our CA
    const DeliveryResult r = deliver_once(cfg, message("a\r\n"));
    CHECK(r.outcome == Outcome::kDeferred);
    CHECK(r.reply.find("TLS handshake") != std::string::npos);
    CHECK(peer->messages() == 0);
  }
  SUBCASE("opportunistic encrypts without verifying") {
    const DeliveryResult r = deliver_once(config_for(peer->port()), message("a\r\n"));
    CHECK(r.outcome == Outcome::kAccepted);
    REQUIRE(peer->messages() == 1);
    CHECK(peer->envelope(1)["tls"] == true);
  }
  SUBCASE("none stays in plain text") {
    UpstreamConfig cfg = config_for(peer->port());
    cfg.tls = UpstreamTls::kNone;
    CHECK(deliver_once(cfg, message("a\r\n")).accepted());
    REQUIRE(peer->messages() == 1);
    CHECK(peer->envelope(1)["tls"] == false);
  }
}

TEST_CASE("UpstreamClient: opportunistic TLS that fails the handshake falls back to plain text") {
  TestCertificate tls;
  auto peer = Peer::aiosmtpd({"--cert", tls.cert.string(), "--key", tls.key.string(), "--broken-tls"});
  const DeliveryResult r = deliver_once(config_for(peer->port()), message(kTrickyContent));
  CHECK(r.outcome == Outcome::kAccepted);
  REQUIRE(peer->messages() == 1);
  CHECK(peer->envelope(1)["tls"] == false);
  CHECK(peer->content(1) == kTrickyContent);

  UpstreamConfig required = config_for(peer->port());
  required.tls = UpstreamTls::kRequired;
  required.ca_file = tls.cert.string();
  const DeliveryResult never_plain = deliver_once(required, message("a\r\n"));
  CHECK(never_plain.outcome == Outcome::kDeferred);
  CHECK(never_plain.reply.find("TLS handshake") != std::string::npos);
  CHECK(peer->messages() == 1);
}

// Sleeps without blocking the io_context.
net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  co_await timer.async_wait(net::use_awaitable);
}

TEST_CASE("UpstreamClient: a reused connection the upstream closed while idle is replaced, not deferred") {
  auto peer = Peer::aiosmtpd({"--timeout", "0.5"});
  const std::string content = "a\r\n";
  const auto [a, b] = run([&](net::any_io_executor ex)
                              -> net::awaitable<std::pair<DeliveryResult, DeliveryResult>> {
    UpstreamClient client(ex, config_for(peer->port()), "holdd.test");
    DeliveryResult first = co_await client.deliver(message(content));
    co_await sleep_for(1500ms);  // the upstream's idle timeout closes the connection
    DeliveryResult second = co_await client.deliver(message(content));
    co_await client.quit();
    co_return std::make_pair(first, second);
  });
  CHECK(a.accepted());
  CHECK(b.accepted());
  REQUIRE(peer->messages() == 2);
  CHECK(peer->envelope(1)["client_port"] != peer->envelope(2)["client_port"]);
}

TEST_CASE("UpstreamClient: no reply to DATA within command_timeout is deferred") {
  auto peer = Peer::smtp_sink({"-p", "-w", "3"});  // not pipelined: DATA's own reply is late
  UpstreamConfig cfg = config_for(peer->port());
  cfg.command_timeout = 1s;
  const DeliveryResult r = deliver_once(cfg, message("a\r\n"));
  CHECK(r.outcome == Outcome::kDeferred);
  CHECK(r.reply == "timeout waiting for reply to DATA from 127.0.0.1:" + std::to_string(peer->port()));
}

TEST_CASE("UpstreamClient: the upstream hanging up mid-transaction is deferred and closes") {
  struct Case {
    std::vector<std::string> sink_options;
    int code;
    std::string reply_start;
  };
  const Case cases[] = {
      {{"-q", "RCPT"}, 0, "connection closed by 127.0.0.1:"},  // no reply at all
      {{"-Q", "RCPT"}, 421, "421 "},                           // 421, then gone
      {{"-q", "."}, 0, "connection closed by 127.0.0.1:"},     // after the content
      {{"-p", "-Q", "RCPT"}, 421, "421 "},                     // likewise, not pipelined
      {{"-p", "-q", "DATA"}, 0, "connection closed by 127.0.0.1:"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.sink_options.back());
    auto peer = Peer::smtp_sink(c.sink_options);
    const std::string content = "a\r\n";
    const auto [r, open] =
        run([&](net::any_io_executor ex) -> net::awaitable<std::pair<DeliveryResult, bool>> {
          UpstreamClient client(ex, config_for(peer->port()), "holdd.test");
          DeliveryResult result = co_await client.deliver(message(content));
          co_return std::make_pair(result, client.is_open());
        });
    CHECK(r.outcome == Outcome::kDeferred);
    CHECK(r.code == c.code);
    CHECK(r.reply.rfind(c.reply_start, 0) == 0);
    CHECK(!open);
  }
}

TEST_CASE("UpstreamClient: CR or LF in the envelope is refused without connecting") {
  const std::string content = "a\r\n";
  const DeliveryResult r =
      deliver_once(config_for(free_port()), message(content, "a@b.test>\r\nRCPT TO:<c@d.test"));
  CHECK(r.outcome == Outcome::kRejected);
  CHECK(r.reply.find("CR, LF") != std::string::npos);
}

TEST_CASE("UpstreamClient: quit and close are safe when not connected") {
  const bool ok = run([](net::any_io_executor ex) -> net::awaitable<bool> {
    UpstreamClient client(ex, config_for(1), "holdd.test");
    co_await client.quit();
    client.close();
    co_return !client.is_open() && client.upstream().port == 1;
  });
  CHECK(ok);
}

}  // namespace
}  // namespace holdd
