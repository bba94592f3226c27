// Sessions against a real SmtpServer on 127.0.0.1, a real Spool (LMDB in a temp
// dir) and a parsed Directory: what a client sees on the wire, and what is stored.
#include "holdd/smtp/session.h"

#include <doctest/doctest.h>

#include "../temp_dir.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <random>

#include "holdd/net/tls_context.h"
#include "holdd/smtp/memory_budget.h"
#include "holdd/smtp/server.h"
#include "../test_certificate.h"

namespace holdd::smtp {
namespace {

namespace fs = std::filesystem;
using net::ip::tcp;
using namespace std::chrono_literals;
namespace ssl = net::ssl;

// A test client: raw bytes out, whole replies in; over TLS after start_tls().
struct Client {
  tcp::socket sock;
  std::string buf;
  std::unique_ptr<ssl::context> tls_ctx;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;

  net::awaitable<void> send(std::string bytes) {
    if (tls) {
      co_await net::async_write(*tls, net::buffer(bytes), net::use_awaitable);
    } else {
      co_await net::async_write(sock, net::buffer(bytes), net::use_awaitable);
    }
  }
  // The client side of the handshake (no certificate check: the tests look at
  // the certificate themselves). `max_version`: e.g. TLS1_1_VERSION.
  net::awaitable<boost::system::error_code> start_tls(int max_version = 0) {
    tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    if (max_version != 0) {
      SSL_CTX_set_min_proto_version(tls_ctx->native_handle(), 0);
      SSL_CTX_set_max_proto_version(tls_ctx->native_handle(), max_version);
      SSL_CTX_set_security_level(tls_ctx->native_handle(), 0);  // let it try TLS 1.1
    }
    tls = std::make_unique<ssl::stream<tcp::socket&>>(sock, *tls_ctx);
    auto [ec] = co_await tls->async_handshake(ssl::stream_base::client,
                                              net::as_tuple(net::use_awaitable));
    co_return ec;
  }
  // SHA-256 of the server's certificate (DER), as hex.
  std::string peer_fingerprint() {
    X509* cert = SSL_get1_peer_certificate(tls->native_handle());
    if (cert == nullptr) return "";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(cert, EVP_sha256(), md, &len);
    X509_free(cert);
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      if (i > 0) out += ':';
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 0xF];
    }
    return out;
  }
  net::awaitable<std::pair<boost::system::error_code, size_t>> read_some(char* into, size_t n) {
    if (tls) {
      auto [ec, got] = co_await tls->async_read_some(net::buffer(into, n),
                                                     net::as_tuple(net::use_awaitable));
      co_return std::make_pair(ec, got);
    }
    auto [ec, got] = co_await sock.async_read_some(net::buffer(into, n),
                                                   net::as_tuple(net::use_awaitable));
    co_return std::make_pair(ec, got);
  }
  // One reply, lines joined with '\n' and without CRLF; "<EOF>" if closed first.
  net::awaitable<std::string> reply() {
    std::string out;
    for (;;) {
      size_t eol;
      while ((eol = buf.find("\r\n")) == std::string::npos) {
        char tmp[4096];
        auto [ec, n] = co_await read_some(tmp, sizeof tmp);
        if (ec) co_return out + "<EOF>";
        buf.append(tmp, n);
      }
      std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 2);
      out += line;
      if (line.size() < 4 || line[3] != '-') co_return out;
      out += '\n';
    }
  }
  net::awaitable<std::string> command(std::string line) {
    co_await send(line + "\r\n");
    co_return co_await reply();
  }
};

struct Harness {
  TempDir dir;
  net::io_context io;
  std::unique_ptr<Spool> spool;
  std::shared_ptr<const Directory> directory;
  IntakeStats stats;
  std::unique_ptr<SmtpServer> server;
  uint16_t port = 0;

  explicit Harness(const std::function<void(ServerConfig&)>& tweak = {},
                   std::shared_ptr<TlsContext> tls = nullptr, MessageMemoryBudget* memory = nullptr,
                   std::shared_ptr<MessageAnnotator> annotator = nullptr) {
    SpoolOptions options;
    options.path = dir.path.string();
    options.initial_state = MailboxState::kHeld;
    options.initial_map_size = 1ull << 24;
    auto opened = Spool::open(options, io.get_executor());
    REQUIRE(opened.ok());
    spool = std::move(*opened);
    DirectoryConfig dc;
    dc.domains = {"example.com"};
    auto parsed = Directory::parse(dc, "anna@example.com\nbob@example.com\n",
                                   "team@example.com: anna@example.com, bob@example.com\n");
    REQUIRE(std::holds_alternative<std::shared_ptr<const Directory>>(parsed));
    directory = std::get<std::shared_ptr<const Directory>>(parsed);
    ServerConfig config;
    config.hostname = "mx.test";
    config.max_message_size = 4096;
    config.max_recipients = 10;
    if (tweak) tweak(config);
    SessionDeps deps;
    deps.config = std::make_shared<const ServerConfig>(config);
    deps.spool = spool.get();
    deps.directory = [this] { return directory; };
    deps.stats = &stats;
    deps.tls = std::move(tls);
    deps.memory = memory;
    deps.annotator = std::move(annotator);
    server = std::make_unique<SmtpServer>(io, deps);
    const std::vector<Endpoint> listen = {Endpoint{"127.0.0.1", 0}};
    REQUIRE(server->listen(listen).is_ok());
    port = server->local_endpoints().at(0).port;
    server->start();
  }

  net::awaitable<Client> connect() {
    Client c{tcp::socket(io), {}};
    co_await c.sock.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                                  net::use_awaitable);
    co_return c;
  }

  // Runs `client`, then shuts the server down; fails after 30 s.
  void run(const std::function<net::awaitable<void>(Harness&)>& client) {
    std::exception_ptr error;
    bool timed_out = false;
    net::steady_timer guard(io, 30s);
    guard.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        timed_out = true;
        io.stop();
      }
    });
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          co_await client(*this);
          co_await server->shutdown(2s);
          co_await spool->sync();  // reads see LMDB; the puts may still be journaled
        },
        [&](std::exception_ptr e) {
          error = e;
          guard.cancel();
          io.stop();
        });
    io.run();
    REQUIRE(!timed_out);
    if (error) std::rethrow_exception(error);
  }

  std::string stored(const std::string& mailbox, size_t index = 0) {
    std::vector<QueueEntry> q = spool->queue(mailbox);
    REQUIRE(q.size() > index);
    Result<std::string> content = spool->content(q[index].id);
    REQUIRE(content.ok());
    return *content;
  }
};

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// A TlsContext for a self-signed certificate made now in `dir`.
std::shared_ptr<TlsContext> test_tls(const fs::path& dir, const std::string& name) {
  testing::TestCertificate c = testing::make_test_certificate(dir, name);
  Result<std::shared_ptr<TlsContext>> tls = TlsContext::load({c.cert.string(), c.key.string()});
  REQUIRE_MESSAGE(tls.ok(), tls.status().to_string());
  return *tls;
}

TEST_CASE("Session: a message to an alias is stored once per mailbox, with our headers") {
  Harness h;
  std::string id;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    CHECK(co_await c.reply() == "220 mx.test ESMTP holdd");
    CHECK(co_await c.command("EHLO client.test") ==
          "250-mx.test\n250-PIPELINING\n250-SIZE 4096\n250-8BITMIME\n250-SMTPUTF8\n"
          "250-ENHANCEDSTATUSCODES\n250-CHUNKING\n250 DSN");
    CHECK(co_await c.command("MAIL FROM:<sender@sender.test> BODY=8BITMIME RET=HDRS") ==
          "250 2.1.0 Ok");
    CHECK(co_await c.command("RCPT TO:<team@example.com> NOTIFY=NEVER") == "250 2.1.5 Ok");
    CHECK(co_await c.command("RCPT TO:<anna@example.com>") == "250 2.1.5 Ok");  // already there
    CHECK(co_await c.command("RCPT TO:<nobody@example.com>") ==
          "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown");
    CHECK(co_await c.command("RCPT TO:<victim@elsewhere.test>") ==
          "550 5.7.1 <victim@elsewhere.test>: Relay access denied");
    CHECK(co_await c.command("DATA") == "354 End data with <CR><LF>.<CR><LF>");
    co_await c.send("Subject: hi\r\n\r\nhello\n.\nMAIL FROM:<x@y>\r\n..dot\r\n.\r\n");
    std::string queued = co_await c.reply();
    REQUIRE(starts_with(queued, "250 2.0.0 Ok: queued as "));
    id = queued.substr(std::string_view("250 2.0.0 Ok: queued as ").size());
    CHECK(co_await c.command("QUIT") == "221 2.0.0 Bye");
    CHECK(co_await c.reply() == "<EOF>");
  });
  const std::string body = "Subject: hi\r\n\r\nhello\r\n.\r\nMAIL FROM:<x@y>\r\n.dot\r\n";
  for (const char* mailbox : {"anna@example.com", "bob@example.com"}) {
    CAPTURE(std::string(mailbox));
    std::vector<QueueEntry> q = h.spool->queue(mailbox);
    REQUIRE(q.size() == 1);
    CHECK(q[0].id == id);
    CHECK(q[0].recipient.rcpt == mailbox);  // after an alias: the mailbox key
    CHECK(q[0].recipient.notify == "NEVER");
    CHECK(q[0].size == body.size());
  }
  const std::string content = h.stored("anna@example.com");
  CHECK(starts_with(content, "Received: from client.test (unknown [127.0.0.1])\r\n\tby mx.test "
                             "(holdd) with ESMTP id " + id + ";\r\n\t"));  // two RCPTs: no "for"
  CHECK(content.find("\r\nMessage-ID: <" + id + ".") != std::string::npos);
  CHECK(content.size() > body.size());
  CHECK(content.substr(content.size() - body.size()) == body);
  Result<MessageMeta> meta = h.spool->meta(id);
  REQUIRE(meta.ok());
  CHECK(meta->sender == "sender@sender.test");
  CHECK(meta->eight_bit);
  CHECK(meta->dsn_ret == "HDRS");
  CHECK(meta->client == "client.test [127.0.0.1]");
  CHECK(meta->received_size == body.size());
  CHECK(h.stats.messages_accepted == 1);
  CHECK(h.stats.recipients_accepted == 2);
  CHECK(h.stats.connections_total == 1);
  CHECK(h.stats.connections_open == 0);
  CHECK(h.stats.replies_by_class[5] == 2);
  CHECK(h.stats.intake_latency.count == 1);
}

TEST_CASE("Session: pipelined commands get their replies in order, a Message-ID is kept") {
  Harness h;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.send("EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<anna@EXAMPLE.com>\r\nDATA\r\n");
    CHECK(starts_with(co_await c.reply(), "250-mx.test"));
    CHECK(co_await c.reply() == "250 2.1.0 Ok");
    CHECK(co_await c.reply() == "250 2.1.5 Ok");
    CHECK(co_await c.reply() == "354 End data with <CR><LF>.<CR><LF>");
    co_await c.send("Message-ID: <m1@sender.test>\r\n\r\nx\r\n.\r\nNOOP\r\nQUIT\r\n");
    CHECK(starts_with(co_await c.reply(), "250 2.0.0 Ok: queued as "));
    CHECK(co_await c.reply() == "250 2.0.0 Ok");
    CHECK(co_await c.reply() == "221 2.0.0 Bye");
  });
  std::vector<QueueEntry> q = h.spool->queue("anna@example.com");
  REQUIRE(q.size() == 1);
  CHECK(q[0].recipient.rcpt == "anna@EXAMPLE.com");  // as written: it is the mailbox
  CHECK(q[0].sender.empty());
  const std::string content = h.stored("anna@example.com");
  CHECK(content.find("Message-ID:") == content.find("Message-ID: <m1@sender.test>"));
  CHECK(content.find(" id " + q[0].id + "\r\n\tfor <anna@EXAMPLE.com>; ") != std::string::npos);
}

TEST_CASE("Session: sequence, syntax and limit refusals") {
  Harness h;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    CHECK(starts_with(co_await c.command("MAIL FROM:<a@b.test>"), "503 5.5.1 "));
    CHECK(co_await c.command("HELO c.test") == "250 mx.test");
    CHECK(starts_with(co_await c.command("RCPT TO:<anna@example.com>"), "503 5.5.1 "));
    CHECK(starts_with(co_await c.command("DATA"), "503 5.5.1 "));
    CHECK(starts_with(co_await c.command("MAIL FROM:<a@b.test> SIZE=4097"), "552 5.3.4 "));
    CHECK(co_await c.command("MAIL FROM:<a@b.test> SIZE=4096") == "250 2.1.0 Ok");
    CHECK(starts_with(co_await c.command("MAIL FROM:<a@b.test>"), "503 5.5.1 "));
    CHECK(co_await c.command("DATA") == "554 5.5.1 Error: no valid recipients");
    CHECK(starts_with(co_await c.command("RCPT TO:<j\xC3\xB6rg@example.com>"), "553 5.6.7 "));
    CHECK(starts_with(co_await c.command("RCPT TO:<victim%elsewhere.test@example.com>"), "550 5.7.1 "));
    CHECK(co_await c.command("RSET") == "250 2.0.0 Ok");
    CHECK(co_await c.command("NOOP") == "250 2.0.0 Ok");
    CHECK(starts_with(co_await c.command("VRFY anna"), "252 2.5.2 "));
    CHECK(starts_with(co_await c.command("HELP"), "214 2.0.0 "));
    CHECK(starts_with(co_await c.command("STARTTLS"), "502 5.5.1 "));
    CHECK(starts_with(co_await c.command("FOO"), "500 5.5.2 "));
    CHECK(co_await c.command(std::string(2000, 'x')) == "500 5.5.2 Error: line too long");
    co_await c.send("NOOP\nNOOP\r\n");
    CHECK(starts_with(co_await c.reply(), "500 5.5.2 "));
    CHECK(starts_with(co_await c.command("MAIL FROM:<a@b.test> X-FOO=1"), "555 5.5.4 "));
    CHECK(co_await c.command("QUIT") == "221 2.0.0 Bye");
  });
}

TEST_CASE("Session: loops and oversize are refused at the end of DATA, in sync") {
  Harness h;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO c.test");
    std::string loop;
    for (int i = 0; i < 51; ++i) loop += "Received: from x by y; hop " + std::to_string(i) + "\r\n";
    std::string fine;
    for (int i = 0; i < 50; ++i) fine += "Received: from x by y; hop " + std::to_string(i) + "\r\n";
    const std::string big(5000, 'b');
    const std::string bodies[] = {loop + "\r\nbody\r\n", big + "\r\n", fine + "\r\nok\r\n"};
    const std::string expected[] = {"554 5.4.6 ", "552 5.3.4 ", "250 2.0.0 Ok: queued as "};
    for (size_t i = 0; i < 3; ++i) {
      CHECK(co_await c.command("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");
      CHECK(co_await c.command("RCPT TO:<anna@example.com>") == "250 2.1.5 Ok");
      CHECK(starts_with(co_await c.command("DATA"), "354 "));
      co_await c.send(bodies[i] + ".\r\n");
      CHECK(starts_with(co_await c.reply(), expected[i]));
    }
  });
  CHECK(h.spool->queue("anna@example.com").size() == 1);
  CHECK(h.stats.messages_accepted == 1);
}

TEST_CASE("Session: BDAT chunks, BDAT then DATA, oversize BDAT") {
  Harness h;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO c.test");
    co_await c.command("MAIL FROM:<a@b.test>");
    co_await c.command("RCPT TO:<anna@example.com>");
    co_await c.send("BDAT 7\r\nab\r\ncd\nBDAT 3 LAST\r\nxyz");
    CHECK(co_await c.reply() == "250 2.0.0 Ok: 7 octets received");
    CHECK(starts_with(co_await c.reply(), "250 2.0.0 Ok: queued as "));

    co_await c.command("MAIL FROM:<a@b.test>");
    co_await c.command("RCPT TO:<bob@example.com>");
    co_await c.send("BDAT 2\r\nabDATA\r\n");
    CHECK(co_await c.reply() == "250 2.0.0 Ok: 2 octets received");
    CHECK(starts_with(co_await c.reply(), "503 5.5.1 "));
    CHECK(co_await c.command("RSET") == "250 2.0.0 Ok");

    co_await c.command("MAIL FROM:<a@b.test>");
    co_await c.command("RCPT TO:<bob@example.com>");
    co_await c.send("BDAT 5000\r\n" + std::string(5000, 'z') + "BDAT 1 LAST\r\nz");
    CHECK(starts_with(co_await c.reply(), "552 5.3.4 "));
    CHECK(starts_with(co_await c.reply(), "503 5.5.1 "));  // the transaction is over
    CHECK(co_await c.command("NOOP") == "250 2.0.0 Ok");  // and we are in sync
  });
  CHECK(h.stored("anna@example.com").ends_with("ab\r\ncd\r\nxyz\r\n"));
  CHECK(h.spool->queue("bob@example.com").empty());
}

TEST_CASE("Session: idle client gets 421 4.4.2 after command_timeout") {
  Harness h([](ServerConfig& c) { c.command_timeout = 1s; });
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    CHECK(co_await c.command("EHLO c.test") != "<EOF>");
    CHECK(starts_with(co_await c.reply(), "421 4.4.2 "));
    CHECK(co_await c.reply() == "<EOF>");
  });
}

TEST_CASE("Session: unfinished DATA is never acknowledged on timeout") {
  Harness h([](ServerConfig& c) { c.data_timeout = 1s; });
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO c.test");
    co_await c.command("MAIL FROM:<a@b.test>");
    co_await c.command("RCPT TO:<anna@example.com>");
    CHECK(starts_with(co_await c.command("DATA"), "354 "));
    co_await c.send("Subject: half\r\n\r\nhalf a message\r\n");
    CHECK(starts_with(co_await c.reply(), "421 4.4.2 "));
  });
  CHECK(h.spool->queue("anna@example.com").empty());
}

TEST_CASE("Session: shutdown: idle gets 421 4.3.2 at once, DATA in progress finishes first") {
  Harness h;
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client idle = co_await hh.connect();
    Client busy = co_await hh.connect();
    co_await idle.reply();
    co_await busy.reply();
    co_await idle.command("EHLO idle.test");
    co_await busy.command("EHLO busy.test");
    co_await busy.command("MAIL FROM:<a@b.test>");
    co_await busy.command("RCPT TO:<anna@example.com>");
    CHECK(starts_with(co_await busy.command("DATA"), "354 "));
    co_await busy.send("Subject: first half\r\n");
    bool shut = false;
    net::co_spawn(
        hh.io, [&]() -> net::awaitable<void> { co_await hh.server->shutdown(10s); },
        [&](std::exception_ptr) { shut = true; });
    CHECK(starts_with(co_await idle.reply(), "421 4.3.2 "));
    CHECK(co_await idle.reply() == "<EOF>");
    CHECK(!shut);
    co_await busy.send("\r\nsecond half\r\n.\r\n");
    CHECK(starts_with(co_await busy.reply(), "250 2.0.0 Ok: queued as "));
    CHECK(starts_with(co_await busy.reply(), "421 4.3.2 "));
    CHECK(co_await busy.reply() == "<EOF>");
  });
  CHECK(h.spool->queue("anna@example.com").size() == 1);
}

TEST_CASE("Session: connection limits and too many errors give 421 4.7.0") {
  Harness h([](ServerConfig& c) { c.max_connections_per_ip = 1; });
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client first = co_await hh.connect();
    CHECK(co_await first.reply() == "220 mx.test ESMTP holdd");
    Client second = co_await hh.connect();
    CHECK(starts_with(co_await second.reply(), "421 4.7.0 "));
    CHECK(co_await second.reply() == "<EOF>");
    for (uint32_t i = 0; i + 1 < kMaxErrors; ++i) {
      CHECK(starts_with(co_await first.command("BOGUS"), "500 5.5.2 "));
    }
    CHECK(starts_with(co_await first.command("BOGUS"), "500 5.5.2 "));
    CHECK(starts_with(co_await first.reply(), "421 4.7.0 "));
    CHECK(co_await first.reply() == "<EOF>");
  });
  CHECK(h.stats.connections_refused == 1);
}

// ---- STARTTLS (RFC 3207) ----

TEST_CASE("Session: STARTTLS: offered, handshake, greet again, stored with ESMTPS and the cipher") {
  TempDir certs;
  Harness h({}, test_tls(certs.path, "mx"));
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    CHECK(co_await c.command("EHLO client.test") ==
          "250-mx.test\n250-PIPELINING\n250-SIZE 4096\n250-STARTTLS\n250-8BITMIME\n"
          "250-SMTPUTF8\n250-ENHANCEDSTATUSCODES\n250-CHUNKING\n250 DSN");
    CHECK(co_await c.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    const boost::system::error_code ec = co_await c.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    const std::string ehlo = co_await c.command("EHLO client.test");
    CHECK(starts_with(ehlo, "250-mx.test\n250-PIPELINING"));
    CHECK(ehlo.find("STARTTLS") == std::string::npos);  // not twice
    CHECK(co_await c.command("MAIL FROM:<sender@sender.test>") == "250 2.1.0 Ok");
    CHECK(co_await c.command("RCPT TO:<anna@example.com>") == "250 2.1.5 Ok");
    CHECK(starts_with(co_await c.command("DATA"), "354 "));
    CHECK(starts_with(co_await c.command("Subject: secret\r\n\r\nover TLS\r\n."),
                      "250 2.0.0 Ok: queued as "));
    CHECK(co_await c.command("QUIT") == "221 2.0.0 Bye");
    CHECK(co_await c.reply() == "<EOF>");
  });
  const std::string content = h.stored("anna@example.com");
  CAPTURE(content);
  CHECK(starts_with(content, "Received: from client.test (unknown [127.0.0.1])\r\n"
                             "\t(using TLSv1.3 with cipher TLS_"));
  CHECK(content.find(" (holdd) with ESMTPS id ") != std::string::npos);
  CHECK(content.find("\r\n\r\nover TLS\r\n") != std::string::npos);
}

TEST_CASE("Session: commands pipelined behind STARTTLS are discarded, never run (CVE-2011-0411)") {
  TempDir certs;
  Harness h({}, test_tls(certs.path, "mx"));
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO client.test");
    // What a man in the middle would add behind the client's STARTTLS.
    co_await c.send("STARTTLS\r\nMAIL FROM:<attacker@evil.test>\r\nRCPT TO:<anna@example.com>\r\n");
    CHECK(co_await c.reply() == "220 2.0.0 Ready to start TLS");
    CHECK(c.buf.empty());  // no plain-text reply to the injected commands
    const boost::system::error_code ec = co_await c.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    // The first reply over TLS answers our command: nothing was queued for the
    // injected ones, and no transaction exists.
    CHECK(co_await c.command("RCPT TO:<anna@example.com>") == "503 5.5.1 Error: need MAIL command");
    CHECK(starts_with(co_await c.command("MAIL FROM:<a@b.test>"), "503 5.5.1 "));  // EHLO first
    CHECK(starts_with(co_await c.command("EHLO client.test"), "250-mx.test"));
    CHECK(co_await c.command("MAIL FROM:<a@b.test>") == "250 2.1.0 Ok");  // not "nested MAIL"
  });
  CHECK(h.spool->queue("anna@example.com").empty());
}

TEST_CASE("Session: STARTTLS refusals, and the transaction before it is forgotten") {
  TempDir certs;
  Harness h({}, test_tls(certs.path, "mx"));
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    CHECK(co_await c.command("STARTTLS now") == "501 5.5.4 Syntax: STARTTLS");
    co_await c.command("EHLO client.test");
    CHECK(co_await c.command("MAIL FROM:<before@tls.test>") == "250 2.1.0 Ok");
    CHECK(co_await c.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    const boost::system::error_code ec = co_await c.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(co_await c.command("STARTTLS") == "503 5.5.1 Error: TLS already active");
    co_await c.command("EHLO client.test");
    CHECK(co_await c.command("RCPT TO:<anna@example.com>") == "503 5.5.1 Error: need MAIL command");
    CHECK(co_await c.command("QUIT") == "221 2.0.0 Bye");
  });
}

TEST_CASE("Session: a failed TLS handshake closes the connection, TLS 1.1 is refused") {
  TempDir certs;
  Harness h({}, test_tls(certs.path, "mx"));
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client plain = co_await hh.connect();
    co_await plain.reply();
    CHECK(co_await plain.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    co_await plain.send("EHLO not-tls.test\r\n");  // not a ClientHello
    CHECK(co_await plain.reply() == "<EOF>");

    Client old = co_await hh.connect();
    co_await old.reply();
    CHECK(co_await old.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    CHECK(co_await old.start_tls(TLS1_1_VERSION));  // an error
    CHECK(co_await old.reply() == "<EOF>");
  });
  CHECK(h.stats.connections_open == 0);
}

TEST_CASE("Session: TLS timeouts: a stalled handshake is closed, an idle TLS client gets 421 over TLS") {
  TempDir certs;
  Harness h([](ServerConfig& c) { c.command_timeout = 1s; }, test_tls(certs.path, "mx"));
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client stalled = co_await hh.connect();
    co_await stalled.reply();
    CHECK(co_await stalled.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    CHECK(co_await stalled.reply() == "<EOF>");  // no plain-text 421 inside a handshake

    Client idle = co_await hh.connect();
    co_await idle.reply();
    CHECK(co_await idle.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    const boost::system::error_code ec = co_await idle.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(starts_with(co_await idle.reply(), "421 4.4.2 "));
    CHECK(co_await idle.reply() == "<EOF>");
  });
}

TEST_CASE("Session: set_tls: new connections get the new certificate, connected ones keep theirs") {
  TempDir certs;
  std::shared_ptr<TlsContext> first = test_tls(certs.path, "first");
  std::shared_ptr<TlsContext> second = test_tls(certs.path, "second");
  REQUIRE(first->sha256_fingerprint() != second->sha256_fingerprint());
  Harness h({}, first);
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client early = co_await hh.connect();
    co_await early.reply();
    hh.server->set_tls(second);
    Client late = co_await hh.connect();
    co_await late.reply();
    CHECK(co_await early.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    CHECK(co_await late.command("STARTTLS") == "220 2.0.0 Ready to start TLS");
    boost::system::error_code ec = co_await early.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    ec = co_await late.start_tls();
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(early.peer_fingerprint() == first->sha256_fingerprint());
    CHECK(late.peer_fingerprint() == second->sha256_fingerprint());

    hh.server->set_tls(nullptr);  // [tls] removed: no longer offered
    Client plain = co_await hh.connect();
    co_await plain.reply();
    CHECK((co_await plain.command("EHLO client.test")).find("STARTTLS") == std::string::npos);
    CHECK(starts_with(co_await plain.command("STARTTLS"), "502 5.5.1 "));
    CHECK(starts_with(co_await early.command("EHLO client.test"), "250-mx.test"));  // still fine
  });
}

// Issue 12 item 4: message content in RAM is bounded by one budget for all
// sessions; what it cannot hold gets 452 4.3.1, and nothing acknowledged is lost.
TEST_CASE("Session: memory budget: 452 instead of 354, 452 at the end of DATA, SIZE=, in sync, a retry works") {
  MessageMemoryBudget budget(1u << 20);  // 1 MiB: 512 KiB of content
  Harness h([](ServerConfig& c) { c.max_message_size = 1u << 20; }, nullptr, &budget);
  const std::string line = std::string(78, 'm') + "\r\n";
  std::string big, small;
  for (int i = 0; i < 4000; ++i) big += line;    // 320000 octets
  for (int i = 0; i < 1250; ++i) small += line;  // 100000 octets
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client a = co_await hh.connect();
    Client b = co_await hh.connect();
    co_await a.reply();
    co_await b.reply();
    co_await a.command("EHLO a.test");
    co_await b.command("EHLO b.test");
    co_await a.command("MAIL FROM:<a@sender.test>");
    co_await a.command("RCPT TO:<anna@example.com>");
    CHECK(starts_with(co_await a.command("DATA"), "354 "));  // 64 KiB of content reserved
    // Everything else is taken: b cannot even begin, a runs out midway.
    MessageMemoryBudget::Reservation other = budget.reservation();
    REQUIRE(other.grow(budget.available()));
    co_await b.command("MAIL FROM:<b@sender.test>");
    co_await b.command("RCPT TO:<bob@example.com>");
    CHECK(co_await b.command("DATA") == "452 4.3.1 Insufficient system storage");
    CHECK(co_await b.command("RSET") == "250 2.0.0 Ok");
    co_await a.send("Subject: too much for now\r\n\r\n" + big + ".\r\n");
    CHECK(co_await a.reply() == "452 4.3.1 Insufficient system storage");
    CHECK(co_await a.command("NOOP") == "250 2.0.0 Ok");  // in sync after the discarded content
    CHECK(budget.used() == other.bytes());  // a gave back what it held at once

    // A declared size is checked against what is left (twice the size: the peak).
    REQUIRE(other.grow(budget.available()));  // what a gave back
    CHECK(co_await b.command("MAIL FROM:<b@sender.test> SIZE=1000") ==
          "452 4.3.1 Insufficient system storage");
    other.release();
    CHECK(co_await b.command("MAIL FROM:<b@sender.test> SIZE=600000") ==
          "452 4.3.1 Insufficient system storage");  // 2 x 600000 > 1 MiB
    CHECK(co_await b.command("MAIL FROM:<b@sender.test> SIZE=400000") == "250 2.1.0 Ok");
    CHECK(co_await b.command("RCPT TO:<bob@example.com>") == "250 2.1.5 Ok");
    CHECK(starts_with(co_await b.command("DATA"), "354 "));
    co_await b.send("Subject: b\r\n\r\n" + small + ".\r\n");
    CHECK(starts_with(co_await b.reply(), "250 2.0.0 Ok: queued as "));

    // With memory back, a's retry (same session, no RSET needed) is accepted.
    co_await a.command("MAIL FROM:<a@sender.test>");
    co_await a.command("RCPT TO:<anna@example.com>");
    CHECK(starts_with(co_await a.command("DATA"), "354 "));
    co_await a.send("Subject: retried\r\n\r\n" + small + ".\r\n");
    CHECK(starts_with(co_await a.reply(), "250 2.0.0 Ok: queued as "));
    CHECK(budget.used() == 0);  // every reservation given back once put() completed
  });
  CHECK(h.stored("anna@example.com").ends_with("Subject: retried\r\n\r\n" + small));
  CHECK(h.stored("bob@example.com").ends_with("Subject: b\r\n\r\n" + small));
  CHECK(h.spool->queue("anna@example.com").size() == 1);
  CHECK(h.stats.messages_accepted == 2);
  CHECK(budget.peak() <= budget.limit());
  CHECK(budget.refusals() == 4);  // b's DATA, a's content, two SIZE=
}

TEST_CASE("Session: memory budget and BDAT: 452 before or after the chunk ends the transaction") {
  MessageMemoryBudget budget(1u << 20);
  Harness h([](ServerConfig& c) { c.max_message_size = 1u << 20; }, nullptr, &budget);
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO c.test");
    MessageMemoryBudget::Reservation other = budget.reservation();
    // Less than the 2 x 64 KiB a chunk needs to begin: 452 before reading it.
    REQUIRE(other.grow(budget.available() - 100 * 1024));
    co_await c.command("MAIL FROM:<a@sender.test>");
    co_await c.command("RCPT TO:<anna@example.com>");
    co_await c.send("BDAT 200000\r\n" + std::string(200000, 'x') + "BDAT 1 LAST\r\nx");
    CHECK(co_await c.reply() == "452 4.3.1 Insufficient system storage");
    CHECK(starts_with(co_await c.reply(), "503 5.5.1 "));  // the transaction is over
    CHECK(co_await c.command("NOOP") == "250 2.0.0 Ok");

    // Enough to begin (2 x 64 KiB), not for the whole chunk: 452 after it.
    other.release();
    REQUIRE(other.grow(budget.available() - 200 * 1024));
    co_await c.command("MAIL FROM:<a@sender.test>");
    co_await c.command("RCPT TO:<anna@example.com>");
    co_await c.send("BDAT 6\r\nfirst\nBDAT 200000\r\n" + std::string(200000, 'y') + "BDAT 1 LAST\r\ny");
    CHECK(co_await c.reply() == "250 2.0.0 Ok: 6 octets received");
    CHECK(co_await c.reply() == "452 4.3.1 Insufficient system storage");
    CHECK(starts_with(co_await c.reply(), "503 5.5.1 "));
    CHECK(co_await c.command("NOOP") == "250 2.0.0 Ok");
    CHECK(budget.used() == other.bytes());

    other.release();
    co_await c.command("MAIL FROM:<a@sender.test>");
    co_await c.command("RCPT TO:<anna@example.com>");
    co_await c.send("BDAT 6\r\nfirst\nBDAT 7 LAST\r\nsecond\n");
    CHECK(co_await c.reply() == "250 2.0.0 Ok: 6 octets received");
    CHECK(starts_with(co_await c.reply(), "250 2.0.0 Ok: queued as "));
    CHECK(budget.used() == 0);
  });
  CHECK(h.spool->queue("anna@example.com").size() == 1);
  CHECK(h.stored("anna@example.com").ends_with("first\r\nsecond\r\n"));
}

// Prepends header fields longer than the spare room behind the content (8 KiB),
// and can take the whole budget while it runs (as other sessions could).
struct LongHeaderAnnotator : MessageAnnotator {
  MessageMemoryBudget* budget = nullptr;
  MessageMemoryBudget::Reservation* hog = nullptr;  // grown to all that is left, if set
  net::awaitable<std::string> annotate(const ClientInfo&, const Envelope&, std::string&) override {
    if (hog != nullptr) REQUIRE(hog->grow(budget->available()));
    std::string fields = "X-Long: start";
    for (int i = 0; i < 400; ++i) fields += "\r\n\tfolded line number " + std::to_string(i) + " of a long field";
    co_return fields + "\r\n";
  }
};

TEST_CASE("Session: memory budget: headers longer than the spare room are charged, or 452") {
  MessageMemoryBudget budget(1u << 20);
  auto annotator = std::make_shared<LongHeaderAnnotator>();
  annotator->budget = &budget;
  MessageMemoryBudget::Reservation hog = budget.reservation();
  Harness h([](ServerConfig& c) { c.max_message_size = 1u << 20; }, nullptr, &budget, annotator);
  h.run([&](Harness& hh) -> net::awaitable<void> {
    Client c = co_await hh.connect();
    co_await c.reply();
    co_await c.command("EHLO c.test");
    for (bool starved : {false, true}) {
      CAPTURE(starved);
      annotator->hog = starved ? &hog : nullptr;
      co_await c.command("MAIL FROM:<a@sender.test>");
      co_await c.command("RCPT TO:<anna@example.com>");
      CHECK(starts_with(co_await c.command("DATA"), "354 "));
      co_await c.send("Subject: long headers\r\n\r\nbody\r\n.\r\n");
      CHECK(starts_with(co_await c.reply(), starved ? "452 4.3.1 " : "250 2.0.0 Ok: queued as "));
      CHECK(budget.used() == hog.bytes());
      hog.release();
    }
  });
  CHECK(h.spool->queue("anna@example.com").size() == 1);
  const std::string stored = h.stored("anna@example.com");
  CHECK(stored.find("X-Long: start\r\n\tfolded line number 0 ") != std::string::npos);
  CHECK(stored.find("folded line number 399 of a long field\r\n") != std::string::npos);
  CHECK(stored.ends_with("Subject: long headers\r\n\r\nbody\r\n"));
  CHECK(budget.peak() <= budget.limit());
}

}  // namespace
}  // namespace holdd::smtp
