// SmtpStream's two sides against each other on 127.0.0.1: a client stream
// (connect, STARTTLS as the client) talking to a server stream (an accepted
// socket, STARTTLS as the server), with a certificate made at test time.
#include "holdd/net/smtp_stream.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "../test_certificate.h"
#include "holdd/net/io_error.h"
#include "holdd/net/line_reader.h"
#include "holdd/net/tls_context.h"

namespace holdd {
namespace {

namespace net = boost::asio;
using net::ip::tcp;
using boost::system::error_code;
using testing::make_test_certificate;
using testing::TestCertificate;
using Code = Status::Code;

// A listener on 127.0.0.1 and an io_context to run both sides on.
struct Loopback {
  net::io_context ctx;
  tcp::acceptor listener{ctx, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};

  uint16_t port() const { return listener.local_endpoint().port(); }
  net::awaitable<tcp::socket> accept() { return listener.async_accept(net::use_awaitable); }
  // Runs the two coroutine functions side by side until both are done, then
  // rethrows what escaped either (a failed REQUIRE inside one: that also stops
  // the other side, which might wait for it forever).
  template <class Server, class Client>
  void run(Server server, Client client) {
    std::exception_ptr escaped;
    auto note = [&](std::exception_ptr e) {
      if (e && !escaped) escaped = e;
      if (e) ctx.stop();
    };
    net::co_spawn(ctx, std::move(server), note);
    net::co_spawn(ctx, std::move(client), note);
    ctx.run();
    if (escaped) std::rethrow_exception(escaped);
  }
};

// The next line from `stream`, read the way each side reads: through a
// LineReader fed by read_some(). The error that stopped it otherwise.
net::awaitable<std::pair<error_code, std::string>> read_line(SmtpStream& stream,
                                                             LineReader& input) {
  for (;;) {
    if (std::optional<CommandLine> line = input.next_line()) {
      co_return std::make_pair(error_code(), std::move(line->text));
    }
    std::span<char> room = input.prepare(4096);
    auto [ec, n] = co_await stream.read_some(room);
    input.commit(ec ? 0 : n);
    if (ec) co_return std::make_pair(ec, std::string());
  }
}

struct Certificates {
  TempDir dir;
  TestCertificate mx = make_test_certificate(dir.path, "mx", "mx.test");

  std::shared_ptr<TlsContext> server() const {
    Result<std::shared_ptr<TlsContext>> tls = TlsContext::load({mx.cert.string(), mx.key.string()});
    REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
    return *tls;
  }
  // Verifying against mx.test's own (self-signed) certificate, or not at all.
  std::shared_ptr<ClientTlsContext> client(bool verify) const {
    Result<std::shared_ptr<ClientTlsContext>> tls = ClientTlsContext::load(verify, mx.cert.string());
    REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
    return *tls;
  }
};

TEST_CASE("SmtpStream: plain, then STARTTLS on both sides, close_notify read as EOF, then a new connection") {
  Certificates certs;
  Loopback loop;
  const uint16_t port = loop.port();
  std::optional<TlsInfo> server_tls, client_tls;
  std::pair<error_code, std::string> after_close;
  std::string second_greeting;

  loop.run(
      [&]() -> net::awaitable<void> {
        SmtpStream server(co_await loop.accept());
        LineReader input(1000);
        CHECK(!(co_await server.write("220 mx.test ready\r\n")));
        CHECK((co_await read_line(server, input)).second == "STARTTLS");
        CHECK(!(co_await server.write("220 go ahead\r\n")));
        const Status shaken = co_await server.handshake(certs.server());
        REQUIRE_MESSAGE(shaken.is_ok(), shaken.to_string());
        CHECK(server.is_tls());
        server_tls = server.tls_info();
        CHECK(!(co_await server.write("250 over TLS\r\n")));
        server.close();  // close_notify, then FIN

        SmtpStream again(co_await loop.accept());  // the client comes back
        CHECK(!(co_await again.write("220 again\r\n")));
        again.close();
      },
      [&]() -> net::awaitable<void> {
        SmtpStream client(co_await net::this_coro::executor);
        LineReader input(SIZE_MAX, LineEnd::kLf);
        const Status connected = co_await client.connect("127.0.0.1", port);
        REQUIRE_MESSAGE(connected.is_ok(), connected.to_string());
        CHECK(!client.is_tls());
        CHECK((co_await read_line(client, input)).second == "220 mx.test ready");
        CHECK(!(co_await client.write("STARTTLS\r\n")));
        CHECK((co_await read_line(client, input)).second == "220 go ahead");
        const Status shaken = co_await client.handshake(certs.client(/*verify=*/true), "mx.test");
        REQUIRE_MESSAGE(shaken.is_ok(), shaken.to_string());
        client_tls = client.tls_info();
        CHECK((co_await read_line(client, input)).second == "250 over TLS");
        after_close = co_await read_line(client, input);

        client.disconnect();  // and back to plain: the same stream connects again
        CHECK(!client.is_tls());
        CHECK(!client.tls_info());
        input.clear();
        const Status reconnected = co_await client.connect("127.0.0.1", port);
        REQUIRE_MESSAGE(reconnected.is_ok(), reconnected.to_string());
        second_greeting = (co_await read_line(client, input)).second;
        client.disconnect();
      });

  REQUIRE(server_tls.has_value());
  REQUIRE(client_tls.has_value());
  CHECK(server_tls->version.rfind("TLSv1.", 0) == 0);
  CHECK(client_tls->version == server_tls->version);
  CHECK(client_tls->cipher == server_tls->cipher);
  CHECK(after_close.first == net::error::eof);
  CHECK(second_greeting == "220 again");
}

TEST_CASE("SmtpStream: the client checks the server's name only when its context verifies") {
  struct Case {
    std::string name;
    bool verify;
    std::string refused;  // the verify result in the client's Status; "" when it succeeds
  };
  const Case cases[] = {
      {"mx.test", true, ""},
      {"other.test", true, "hostname mismatch"},
      {"127.0.0.1", true, "IP address mismatch"},  // checked as an address, not sent as SNI
      {"other.test", false, ""},                   // opportunistic: any certificate will do
  };
  Certificates certs;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    CAPTURE(c.verify);
    Loopback loop;
    const uint16_t port = loop.port();
    Status server_result, client_result;
    loop.run(
        [&]() -> net::awaitable<void> {
          SmtpStream server(co_await loop.accept());
          server_result = co_await server.handshake(certs.server());
          server.close();
        },
        [&]() -> net::awaitable<void> {
          SmtpStream client(co_await net::this_coro::executor);
          REQUIRE((co_await client.connect("127.0.0.1", port)).is_ok());
          client_result = co_await client.handshake(certs.client(c.verify), c.name);
          client.disconnect();
        });
    if (c.refused.empty()) {
      CHECK_MESSAGE(client_result.is_ok(), client_result.to_string());
      CHECK_MESSAGE(server_result.is_ok(), server_result.to_string());
    } else {
      CHECK(client_result.code() == Code::kTemporary);
      CAPTURE(client_result.message());
      CHECK(client_result.message().rfind(
                "TLS handshake with 127.0.0.1:" + std::to_string(port) + " failed: ", 0) == 0);
      CHECK(client_result.message().find("(" + c.refused + ")") != std::string::npos);
      // The server hears an alert: its failure reads as the session logs it.
      CHECK(server_result.code() == Code::kTemporary);
      CHECK(server_result.message().rfind("TLS handshake failed: ", 0) == 0);
    }
  }
}

TEST_CASE("SmtpStream: connect failures are temporary and name the peer") {
  net::io_context ctx;
  uint16_t port = 0;
  {
    tcp::acceptor closed(ctx, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = closed.local_endpoint().port();
  }  // nobody listens there now
  Status refused;
  net::co_spawn(
      ctx,
      [&]() -> net::awaitable<void> {
        SmtpStream client(co_await net::this_coro::executor);
        refused = co_await client.connect("127.0.0.1", port);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  ctx.run();
  CHECK(refused.code() == Code::kTemporary);
  CHECK(refused.message() == "connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
  CHECK(host_port("::1", 25) == "[::1]:25");
  CHECK(host_port("mx.example.com", 2525) == "mx.example.com:2525");
}

TEST_CASE("SmtpStream: disconnect() cancels a read waiting on TLS") {
  Certificates certs;
  Loopback loop;
  const uint16_t port = loop.port();
  error_code pending;
  loop.run(
      [&]() -> net::awaitable<void> {
        SmtpStream server(co_await loop.accept());
        REQUIRE((co_await server.handshake(certs.server())).is_ok());
        // Says nothing: the client's read waits until it disconnects.
        LineReader input(1000);
        (void)co_await read_line(server, input);
        server.close();
      },
      [&]() -> net::awaitable<void> {
        SmtpStream client(co_await net::this_coro::executor);
        REQUIRE((co_await client.connect("127.0.0.1", port)).is_ok());
        REQUIRE((co_await client.handshake(certs.client(false), "mx.test")).is_ok());
        net::steady_timer soon(co_await net::this_coro::executor, std::chrono::milliseconds(50));
        soon.async_wait([&](error_code) { client.disconnect(); });
        std::array<char, 64> buf;
        auto [ec, n] = co_await client.read_some(buf);
        pending = ec;
        CHECK(n == 0);
      });
  CHECK(is_cancelled(pending));
  CHECK(from_io_error(pending, "x").code() == Code::kCancelled);
}

}  // namespace
}  // namespace holdd
