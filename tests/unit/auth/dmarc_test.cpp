#include "holdd/auth/dmarc.h"

#include <doctest/doctest.h>

#include <string>

#include "dns_server.h"

namespace holdd::auth {
namespace {

const PublicSuffixList& psl() {
  static const PublicSuffixList list = PublicSuffixList::parse("com\nuk\nco.uk\ntest\n");
  return list;
}

TEST_CASE("is_aligned: strict wants the same name, relaxed the same organizational domain") {
  struct Case {
    std::string from, auth;
    Alignment mode;
    bool aligned;
  };
  const Case cases[] = {
      {"example.com", "example.com", Alignment::kStrict, true},
      {"example.com", "EXAMPLE.com", Alignment::kStrict, true},
      {"example.com", "mail.example.com", Alignment::kStrict, false},
      {"example.com", "mail.example.com", Alignment::kRelaxed, true},
      {"news.example.com", "mail.example.com", Alignment::kRelaxed, true},
      {"example.com", "example.net", Alignment::kRelaxed, false},
      {"a.example.co.uk", "b.example.co.uk", Alignment::kRelaxed, true},
      {"example.co.uk", "other.co.uk", Alignment::kRelaxed, false},  // co.uk is a suffix
      {"example.com", "", Alignment::kRelaxed, false},
      {"", "", Alignment::kStrict, false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.from);
    CAPTURE(c.auth);
    CHECK(is_aligned(c.from, c.auth, c.mode, psl()) == c.aligned);
  }
}

TEST_CASE("evaluate_dmarc: pass needs an aligned pass from SPF or DKIM") {
  auto spf = [](Verdict v, std::string domain) {
    SpfResult r;
    r.verdict = v;
    r.domain = std::move(domain);
    return r;
  };
  auto dkim = [](Verdict v, std::string d) {
    DkimResult r;
    DkimSignatureResult s;
    s.verdict = v;
    s.domain = std::move(d);
    r.signatures.push_back(s);
    return r;
  };
  DmarcRecord relaxed;
  relaxed.p = "reject";
  DmarcRecord strict = relaxed;
  strict.adkim = Alignment::kStrict;
  strict.aspf = Alignment::kStrict;
  DkimResult unsigned_msg;

  struct Case {
    const char* name;
    DmarcRecord record;
    SpfResult spf;
    DkimResult dkim;
    Verdict expected;
  };
  const Case cases[] = {
      {"spf aligned", relaxed, spf(Verdict::kPass, "example.com"), unsigned_msg, Verdict::kPass},
      {"spf relaxed subdomain", relaxed, spf(Verdict::kPass, "bounce.example.com"), unsigned_msg,
       Verdict::kPass},
      {"spf strict subdomain", strict, spf(Verdict::kPass, "bounce.example.com"), unsigned_msg,
       Verdict::kFail},
      {"spf pass, other domain", relaxed, spf(Verdict::kPass, "esp.example.net"), unsigned_msg,
       Verdict::kFail},
      {"spf fail, aligned", relaxed, spf(Verdict::kFail, "example.com"), unsigned_msg,
       Verdict::kFail},
      {"dkim aligned", relaxed, spf(Verdict::kFail, "example.com"),
       dkim(Verdict::kPass, "example.com"), Verdict::kPass},
      {"dkim relaxed subdomain", relaxed, spf(Verdict::kNone, ""),
       dkim(Verdict::kPass, "mail.example.com"), Verdict::kPass},
      {"dkim strict subdomain", strict, spf(Verdict::kNone, ""),
       dkim(Verdict::kPass, "mail.example.com"), Verdict::kFail},
      {"dkim pass, other domain", relaxed, spf(Verdict::kNone, ""),
       dkim(Verdict::kPass, "example.net"), Verdict::kFail},
      {"dkim fail, aligned", relaxed, spf(Verdict::kNone, ""),
       dkim(Verdict::kFail, "example.com"), Verdict::kFail},
      {"spf temperror, aligned", relaxed, spf(Verdict::kTemperror, "example.com"),
       unsigned_msg, Verdict::kTemperror},
      {"spf temperror, not aligned", relaxed, spf(Verdict::kTemperror, "example.net"),
       unsigned_msg, Verdict::kFail},
      {"dkim temperror, aligned", relaxed, spf(Verdict::kFail, "example.com"),
       dkim(Verdict::kTemperror, "example.com"), Verdict::kTemperror},
      {"temperror loses to a pass", relaxed, spf(Verdict::kTemperror, "example.com"),
       dkim(Verdict::kPass, "example.com"), Verdict::kPass},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    CHECK(evaluate_dmarc("example.com", c.record, &c.spf, &c.dkim, psl()) == c.expected);
  }
  CHECK(evaluate_dmarc("example.com", relaxed, nullptr, nullptr, psl()) == Verdict::kFail);
}

TEST_CASE("parse_dmarc_record: tags, defaults, invalid records") {
  auto r = parse_dmarc_record("v=DMARC1; p=reject; sp=none; adkim=s; aspf=r; pct=50");
  REQUIRE(r);
  CHECK(r->p == "reject");
  CHECK(r->sp == "none");
  CHECK(r->adkim == Alignment::kStrict);
  CHECK(r->aspf == Alignment::kRelaxed);

  r = parse_dmarc_record("v=DMARC1;p=Quarantine");
  REQUIRE(r);
  CHECK(r->p == "quarantine");
  CHECK(r->adkim == Alignment::kRelaxed);

  CHECK_FALSE(parse_dmarc_record("v=spf1 -all"));
  CHECK_FALSE(parse_dmarc_record("p=reject; v=DMARC1"));  // v= must come first
  CHECK_FALSE(parse_dmarc_record(""));

  r = parse_dmarc_record("v=DMARC1; p=bogus");
  REQUIRE(r);
  CHECK(r->p.empty());  // permerror
  r = parse_dmarc_record("v=DMARC1; rua=mailto:d@example.com");
  REQUIRE(r);
  CHECK(r->p == "none");  // RFC 7489 6.6.3
}

TEST_CASE("from_domain: the RFC5322.From domain, or why there is none") {
  struct Case {
    std::string headers;
    std::optional<std::string> domain;
  };
  const Case cases[] = {
      {"From: anna@Example.COM\r\n", "example.com"},
      {"From: \"Anna, A.\" <anna@example.com>\r\n", "example.com"},
      {"From: Anna (work@other.example) <anna@example.com>\r\n", "example.com"},
      {"From: Anna\r\n <anna@example.com>\r\n", "example.com"},
      {"Subject: x\r\nfrom: <anna@example.com.>\r\n", "example.com"},
      {"From: a@example.com, b@example.com\r\n", "example.com"},
      {"From: a@example.com, b@example.net\r\n", ""},  // ambiguous
      {"From: a@example.com\r\nFrom: b@example.com\r\n", ""},
      {"Subject: no from\r\n", std::nullopt},
      {"From: undisclosed-recipients:;\r\n", std::nullopt},
  };
  for (const Case& c : cases) {
    CAPTURE(c.headers);
    CHECK(from_domain(c.headers + "\r\nFrom: body@body.example\r\n") == c.domain);
  }
}

// --- against a real DNS server ----------------------------------------------

TEST_CASE("check_dmarc: policy from DNS, organizational fallback, pass and fail") {
  if (!testing::dnsmasq_available_or_warn()) return;
  testing::DnsServer dns({
      "--txt-record=_dmarc.example.test,v=DMARC1; p=reject; sp=quarantine",
      "--txt-record=_dmarc.strict.test,v=DMARC1; p=none; adkim=s; aspf=s",
      "--txt-record=_dmarc.broken.test,v=DMARC1; p=sometimes",
      "--txt-record=_dmarc.two.test,v=DMARC1; p=none",
      "--txt-record=_dmarc.two.test,v=DMARC1; p=reject",
  });
  REQUIRE(dns.ready());
  Result<Resolver> resolver = Resolver::create({dns.address()}, std::chrono::seconds(2));
  REQUIRE(resolver);

  SpfResult spf_pass;
  spf_pass.verdict = Verdict::kPass;
  spf_pass.domain = "example.test";
  DkimResult no_dkim;

  struct Case {
    std::string from;
    const SpfResult* spf;
    Verdict verdict;
    std::string policy;
  };
  const Case cases[] = {
      {"anna@example.test", &spf_pass, Verdict::kPass, "reject"},
      {"anna@mail.example.test", &spf_pass, Verdict::kPass, "quarantine"},  // org record, sp=
      {"anna@strict.test", &spf_pass, Verdict::kFail, "none"},
      {"anna@nodmarc.test", &spf_pass, Verdict::kNone, ""},
      {"anna@broken.test", &spf_pass, Verdict::kPermerror, ""},
      {"anna@two.test", &spf_pass, Verdict::kNone, ""},  // two records: none
      {"anna@example.test", nullptr, Verdict::kFail, "reject"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.from);
    DmarcResult r = check_dmarc(*resolver, "From: " + c.from + "\r\n\r\nbody\r\n", c.spf,
                                &no_dkim, psl());
    CHECK(r.verdict == c.verdict);
    CHECK(r.policy == c.policy);
  }

  DmarcResult none = check_dmarc(*resolver, "Subject: x\r\n\r\n", &spf_pass, &no_dkim, psl());
  CHECK(none.verdict == Verdict::kNone);
  CHECK(none.from_domain.empty());

  dns.stop();
  DmarcResult temp = check_dmarc(*resolver, "From: anna@example.test\r\n\r\n", &spf_pass,
                                 &no_dkim, psl());
  CHECK(temp.verdict == Verdict::kTemperror);
  CHECK(temp.from_domain == "example.test");
}

}  // namespace
}  // namespace holdd::auth
