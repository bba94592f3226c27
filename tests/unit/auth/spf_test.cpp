#include "holdd/auth/spf.h"

#include <netinet/in.h>

#include <doctest/doctest.h>

extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
}

#include <string>

#include "dns_server.h"

namespace holdd::auth {
namespace {

using std::chrono::seconds;

// Client addresses come from 192.0.2.0/24, 198.51.100.0/24 and 2001:db8::/32:
// libspf2 passes loopback clients without looking at any record.
TEST_CASE("check_spf: verdicts from records served by dnsmasq") {
  if (!testing::dnsmasq_available_or_warn()) return;
  testing::DnsServer dns({
      "--txt-record=example.test,v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all",
      "--txt-record=soft.test,v=spf1 ip4:192.0.2.0/24 ~all",
      "--txt-record=neutral.test,v=spf1 ?all",
      "--txt-record=nospf.test,google-site-verification=abc",
      "--txt-record=include.test,v=spf1 include:example.test -all",
      "--txt-record=mx.test,v=spf1 mx -all",
      "--mx-host=mx.test,mail.mx.test,10",
      "--host-record=mail.mx.test,198.51.100.25",
      "--txt-record=a.test,v=spf1 a:host.a.test -all",
      "--host-record=host.a.test,198.51.100.7",
      "--txt-record=bad.test,v=spf1 ip4:192.0.2.0/24 frobnicate -all",
      "--txt-record=twice.test,v=spf1 -all",
      "--txt-record=twice.test,v=spf1 +all",
      "--txt-record=loop.test,v=spf1 include:loop.test -all",
      "--txt-record=helo.test,v=spf1 ip4:198.51.100.9 -all",
  });
  REQUIRE(dns.ready());
  Result<Resolver> resolver = Resolver::create({dns.address()}, seconds(2));
  REQUIRE(resolver);

  struct Case {
    std::string ip, helo, mail_from;
    Verdict verdict;
  };
  const Case cases[] = {
      {"192.0.2.10", "mx.example.test", "anna@example.test", Verdict::kPass},
      {"198.51.100.10", "mx.example.test", "anna@example.test", Verdict::kFail},
      {"2001:db8::25", "mx.example.test", "anna@example.test", Verdict::kPass},
      {"2001:db9::25", "mx.example.test", "anna@example.test", Verdict::kFail},
      {"192.0.2.10", "mx.example.test", "anna@Example.TEST", Verdict::kPass},
      {"198.51.100.10", "x.test", "anna@soft.test", Verdict::kSoftfail},
      {"198.51.100.10", "x.test", "anna@neutral.test", Verdict::kNeutral},
      {"198.51.100.10", "x.test", "anna@nospf.test", Verdict::kNone},
      {"198.51.100.10", "x.test", "anna@nxdomain.test", Verdict::kNone},
      {"192.0.2.99", "x.test", "anna@include.test", Verdict::kPass},
      {"198.51.100.99", "x.test", "anna@include.test", Verdict::kFail},
      {"198.51.100.25", "x.test", "anna@mx.test", Verdict::kPass},       // MX -> A
      {"198.51.100.26", "x.test", "anna@mx.test", Verdict::kFail},
      {"198.51.100.7", "x.test", "anna@a.test", Verdict::kPass},         // a:
      {"198.51.100.10", "x.test", "anna@bad.test", Verdict::kPermerror},
      {"198.51.100.10", "x.test", "anna@twice.test", Verdict::kPermerror},  // two records
      {"198.51.100.10", "x.test", "anna@loop.test", Verdict::kPermerror},   // lookup limit
      {"198.51.100.9", "helo.test", "", Verdict::kPass},   // null sender: postmaster@HELO
      {"198.51.100.8", "helo.test", "", Verdict::kFail},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ip);
    CAPTURE(c.mail_from);
    SpfResult r = check_spf(*resolver, c.ip, c.helo, c.mail_from, "mx1.holdd.test");
    CHECK(to_string(r.verdict) == to_string(c.verdict));
  }

  SpfResult helo = check_spf(*resolver, "198.51.100.9", "helo.test", "", "mx1.holdd.test");
  CHECK(helo.helo_identity);
  CHECK(helo.identity == "helo.test");
  CHECK(helo.domain == "helo.test");
  SpfResult mail = check_spf(*resolver, "192.0.2.1", "x.test", "anna@Example.test", "mx1");
  CHECK_FALSE(mail.helo_identity);
  CHECK(mail.identity == "anna@Example.test");
  CHECK(mail.domain == "example.test");

  // The DNS server goes away: temperror, never a failure.
  dns.stop();
  SpfResult gone = check_spf(*resolver, "192.0.2.10", "x.test", "anna@example.test", "mx1");
  CHECK(to_string(gone.verdict) == "temperror");
}

TEST_CASE("check_spf: nothing to check gives none, a bad client address permerror") {
  Result<Resolver> resolver = Resolver::create({"127.0.0.1:1"}, seconds(1));
  REQUIRE(resolver);
  CHECK(check_spf(*resolver, "192.0.2.1", "", "", "mx1").verdict == Verdict::kNone);
  CHECK(check_spf(*resolver, "192.0.2.1", "x.test", "anna@", "mx1").verdict == Verdict::kNone);
  CHECK(check_spf(*resolver, "192.0.2.1", "[192.0.2.1]", "", "mx1").verdict == Verdict::kNone);
  CHECK(check_spf(*resolver, "not-an-ip", "x.test", "a@b.test", "mx1").verdict ==
        Verdict::kPermerror);
}

TEST_CASE("check_spf: libspf2's error handler throws instead of calling abort()") {
  Result<Resolver> resolver = Resolver::create({"127.0.0.1:1"}, seconds(1));
  REQUIRE(resolver);
  check_spf(*resolver, "192.0.2.1", "", "", "mx1");  // installs the handlers
  CHECK_THROWS(SPF_dns_lookup(nullptr, "example.test", ns_t_txt, 0));  // SPF_ASSERT_NOTNULL
}

}  // namespace
}  // namespace holdd::auth
