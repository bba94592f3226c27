#include "holdd/auth/auth_verifier.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "dkim_signer.h"
#include "dns_server.h"

namespace holdd::auth {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

const std::string kMessage =
    "Authentication-Results: mx1.holdd.test; spf=pass; dkim=pass; dmarc=pass\r\n"
    "From: Anna <anna@example.test>\r\n"
    "To: bob@holdd.test\r\n"
    "Subject: test\r\n"
    "\r\n"
    "Hello Bob\r\n";

struct Outcome {
  std::string header;
  bool resumed_on_io_thread = false;
};

// Runs verify() in a coroutine on an io_context, as the SMTP session does.
Outcome run_verify(AuthVerifier& verifier, const AuthInput& input) {
  net::io_context io;
  Outcome out;
  const std::thread::id io_thread = std::this_thread::get_id();
  auto session = [&]() -> net::awaitable<void> {
    std::string header = co_await verifier.verify(input);
    out.header = header;
    out.resumed_on_io_thread = std::this_thread::get_id() == io_thread;
  };
  net::co_spawn(io, session, [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  return out;
}

AuthConfig config_for(std::string nameserver) {
  AuthConfig c;
  c.authserv_id = "mx1.holdd.test";
  c.nameservers = {std::move(nameserver)};
  c.dns_timeout = seconds(2);
  return c;
}

TEST_CASE("AuthVerifier: SPF, DKIM and DMARC in one header, forged A-R removed apart") {
  if (!testing::dnsmasq_available_or_warn()) return;
  testing::DkimKey key = testing::DkimKey::generate();
  testing::DnsServer dns({
      "--txt-record=example.test,v=spf1 ip4:192.0.2.0/24 -all",
      "--txt-record=_dmarc.example.test,v=DMARC1; p=reject",
      "--txt-record=other.test,v=spf1 ip4:198.51.100.0/24 -all",
      key.txt_record("sel", "example.test"),
  });
  REQUIRE(dns.ready());
  auto verifier = AuthVerifier::create(config_for(dns.address()), {2, seconds(0)});
  REQUIRE(verifier);
  const std::string content = testing::dkim_signed(kMessage, key, "sel", "example.test");

  SUBCASE("all pass") {
    AuthInput in{"192.0.2.10", "mx.example.test", "anna@example.test", content};
    Outcome out = run_verify(**verifier, in);
    CHECK(out.resumed_on_io_thread);
    std::string b = testing::b_prefix_of(content);
    CHECK(out.header ==
          "Authentication-Results: mx1.holdd.test;\r\n"
          "\tspf=pass smtp.mailfrom=anna@example.test;\r\n"
          "\tdkim=pass header.d=example.test header.s=sel header.b=" + b + ";\r\n"
          "\tdmarc=pass header.from=example.test policy.dmarc=reject\r\n");
  }
  SUBCASE("SPF fails for another domain, DKIM fails on a changed body: DMARC fails") {
    std::string tampered = content;
    tampered[tampered.find("Bob\r\n")] = 'R';
    AuthInput in{"198.51.100.10", "mx.other.test", "bounce@other.test", tampered};
    Outcome out = run_verify(**verifier, in);
    CHECK(out.header.find("\tspf=pass smtp.mailfrom=bounce@other.test;\r\n") != std::string::npos);
    CHECK(out.header.find("\tdkim=fail (") == std::string::npos);  // no comment on fail
    CHECK(out.header.find("\tdkim=fail header.d=example.test header.s=sel") != std::string::npos);
    CHECK(out.header.find("\tdmarc=fail header.from=example.test policy.dmarc=reject\r\n") !=
          std::string::npos);
  }
  SUBCASE("the forged A-R claiming our id is removed, the signature still verified first") {
    std::string stored = content;
    CHECK((*verifier)->remove_forged_results(stored) == 1);
    CHECK(stored.find("\r\nAuthentication-Results:") == std::string::npos);
    CHECK(stored.find("DKIM-Signature: ") == 0);
    CHECK((*verifier)->without_forged_results(content) == stored);
  }
  SUBCASE("the DNS server stopped: temperror for SPF, DKIM and DMARC") {
    dns.stop();
    AuthInput in{"192.0.2.10", "mx.example.test", "anna@example.test", content};
    Outcome out = run_verify(**verifier, in);
    CHECK(out.header.find("\tspf=temperror") != std::string::npos);
    CHECK(out.header.find("\tdkim=temperror") != std::string::npos);
    CHECK(out.header.find("\tdmarc=temperror") != std::string::npos);
  }
}

TEST_CASE("AuthVerifier: disabled methods are left out, all disabled gives no header") {
  AuthConfig c = config_for("127.0.0.1:" + std::to_string(testing::free_port()));
  c.spf = false;
  c.dmarc = false;
  auto verifier = AuthVerifier::create(c);
  REQUIRE(verifier);
  AuthInput in{"192.0.2.10", "mx.example.test", "anna@example.test", kMessage};
  CHECK(run_verify(**verifier, in).header ==
        "Authentication-Results: mx1.holdd.test;\r\n\tdkim=none\r\n");

  c.dkim = false;
  auto off = AuthVerifier::create(c);
  REQUIRE(off);
  CHECK_FALSE((*off)->enabled());
  CHECK(run_verify(**off, in).header.empty());
}

TEST_CASE("AuthVerifier: a DNS server that never answers is bounded by time_limit") {
  int sock = socket(AF_INET, SOCK_DGRAM, 0);  // bound, never read: queries vanish
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(sock, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  getsockname(sock, reinterpret_cast<sockaddr*>(&a), &len);
  AuthConfig c = config_for("127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
  c.dns_timeout = seconds(1);
  auto verifier = AuthVerifier::create(c, {1, seconds(2)});
  REQUIRE(verifier);
  testing::DkimKey key = testing::DkimKey::generate();
  std::string content = testing::dkim_signed(kMessage, key, "sel", "example.test");
  AuthInput in{"192.0.2.10", "mx.example.test", "anna@example.test", content};
  auto start = Clock::now();
  Outcome out = run_verify(**verifier, in);
  auto took = Clock::now() - start;
  close(sock);
  CHECK(took < seconds(4));
  CHECK(out.header.find("\tspf=temperror") != std::string::npos);
  CHECK(out.header.find("\tdkim=temperror") != std::string::npos);
  CHECK(out.header.find("\tdmarc=temperror") != std::string::npos);
}

TEST_CASE("AuthVerifier::create: an invalid nameserver is an error") {
  AuthConfig c = config_for("dns.example.com");
  CHECK_FALSE(AuthVerifier::create(c));
}

}  // namespace
}  // namespace holdd::auth
