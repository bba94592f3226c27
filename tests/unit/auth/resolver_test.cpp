#include "holdd/auth/resolver.h"

#include <arpa/nameser.h>
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "dns_server.h"

namespace holdd::auth {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

TEST_CASE("Resolver::create: nameservers are IP addresses with an optional port") {
  CHECK(Resolver::create({}, seconds(5)));
  CHECK(Resolver::create({"192.0.2.53:5353", "[2001:db8::53]:53", "::1"}, seconds(5)));
  CHECK_FALSE(Resolver::create({"dns.example.com"}, seconds(5)));
  CHECK_FALSE(Resolver::create({"192.0.2.53:0"}, seconds(5)));
  CHECK_FALSE(Resolver::create({"nonsense:x"}, seconds(5)));
  CHECK_FALSE(Resolver::create({"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}, seconds(5)));  // MAXNS
}

TEST_CASE("Resolver: names that are not DNS names are NXDOMAIN without a query") {
  // Nothing listens on port 1: a query would fail as temporary, not NXDOMAIN.
  Result<Resolver> r = Resolver::create({"127.0.0.1:1"}, seconds(1));
  REQUIRE(r);
  for (std::string name : {std::string(""), std::string("a..b"), std::string(64, 'x') + ".test",
                           std::string(300, 'a'), std::string("a b.test")}) {
    CAPTURE(name);
    CHECK(r->query(name, ns_t_txt).status == DnsStatus::kNxDomain);
  }
}

TEST_CASE("Resolver: a passed deadline fails at once, as temporary") {
  Result<Resolver> r = Resolver::create({"127.0.0.1:1"}, seconds(5));
  REQUIRE(r);
  r->set_deadline(Clock::now() - seconds(1));
  auto start = Clock::now();
  TxtReply reply = r->txt("example.test");
  CHECK(reply.status == DnsStatus::kTemporary);
  CHECK(Clock::now() - start < seconds(1));
}

TEST_CASE("Resolver: TXT answers, NXDOMAIN and NODATA from dnsmasq on a high port, v4 and v6") {
  if (!testing::dnsmasq_available_or_warn()) return;
  testing::DnsServer dns({"--txt-record=one.test,v=spf1 -all",
                          "--txt-record=split.test,first half ,second half",
                          "--txt-record=many.test,a", "--txt-record=many.test,b",
                          "--host-record=host.test,192.0.2.10"});
  REQUIRE(dns.ready());
  for (const std::string& server : {dns.address(), dns.address6()}) {
    CAPTURE(server);
    Result<Resolver> r = Resolver::create({server}, seconds(2));
    REQUIRE(r);
    TxtReply one = r->txt("one.test");
    CHECK(one.status == DnsStatus::kFound);
    REQUIRE(one.records.size() == 1);
    CHECK(one.records[0] == "v=spf1 -all");

    TxtReply split = r->txt("split.test");  // character-strings concatenated
    REQUIRE(split.records.size() == 1);
    CHECK(split.records[0] == "first half second half");

    CHECK(r->txt("many.test").records.size() == 2);
    CHECK(r->txt("missing.test").status == DnsStatus::kNxDomain);
    CHECK(r->txt("host.test").status == DnsStatus::kNoData);
    CHECK(r->query("host.test", ns_t_a).status == DnsStatus::kFound);
  }
}

TEST_CASE("Resolver: no server listening is a quick temporary failure") {
  uint16_t port = testing::free_port();
  Result<Resolver> r = Resolver::create({"127.0.0.1:" + std::to_string(port)}, seconds(2));
  REQUIRE(r);
  auto start = Clock::now();
  CHECK(r->txt("one.test").status == DnsStatus::kTemporary);
  CHECK(Clock::now() - start < seconds(3));
}

TEST_CASE("Resolver: a server that never answers times out within the timeout") {
  // A bound UDP socket nobody reads: queries vanish (no ICMP error comes back).
  int sock = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(bind(sock, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  getsockname(sock, reinterpret_cast<sockaddr*>(&a), &len);
  Result<Resolver> r =
      Resolver::create({"127.0.0.1:" + std::to_string(ntohs(a.sin_port))}, seconds(1));
  REQUIRE(r);
  auto start = Clock::now();
  TxtReply reply = r->txt("one.test");
  auto took = Clock::now() - start;
  close(sock);
  CHECK(reply.status == DnsStatus::kTemporary);
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::milliseconds(2500));
}

}  // namespace
}  // namespace holdd::auth
