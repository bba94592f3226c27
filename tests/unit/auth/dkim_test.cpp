#include "holdd/auth/dkim.h"

#include <doctest/doctest.h>

#include <string>

#include "dkim_signer.h"
#include "dns_server.h"

namespace holdd::auth {
namespace {

using std::chrono::seconds;

const std::string kMessage =
    "From: Anna <anna@example.test>\r\n"
    "To: bob@holdd.test\r\n"
    "Subject: test\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
    "Message-ID: <1@example.test>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "this is signed.\r\n";

TEST_CASE("verify_dkim: an unsigned message is none, without any DNS") {
  Result<Resolver> resolver = Resolver::create({"127.0.0.1:1"}, seconds(1));
  REQUIRE(resolver);
  DkimResult r = verify_dkim(*resolver, kMessage);
  CHECK(r.verdict == Verdict::kNone);
  CHECK(r.signatures.empty());
}

TEST_CASE("verify_dkim: signatures checked against keys served by dnsmasq") {
  if (!testing::dnsmasq_available_or_warn()) return;
  testing::DkimKey key = testing::DkimKey::generate();
  testing::DkimKey other = testing::DkimKey::generate();
  testing::DnsServer dns({key.txt_record("sel", "example.test"),
                          other.txt_record("wrong", "example.test"),
                          "--txt-record=revoked._domainkey.example.test,v=DKIM1; k=rsa; p=",
                          "--server=/slow.test/127.0.0.1#" + std::to_string(testing::free_port())});
  REQUIRE(dns.ready());
  Result<Resolver> resolver = Resolver::create({dns.address()}, seconds(2));
  REQUIRE(resolver);

  const std::string signed_msg = testing::dkim_signed(kMessage, key, "sel", "example.test");

  SUBCASE("the signed message passes") {
    DkimResult r = verify_dkim(*resolver, signed_msg);
    CHECK(r.verdict == Verdict::kPass);
    REQUIRE(r.signatures.size() == 1);
    const DkimSignatureResult& s = r.signatures[0];
    CHECK(to_string(s.verdict) == "pass");
    CHECK(s.domain == "example.test");
    CHECK(s.selector == "sel");
    CHECK(s.b_prefix.size() == 8);
    std::string b_tag = testing::b_prefix_of(signed_msg);
    CHECK(s.b_prefix == b_tag);
  }
  SUBCASE("one body byte changed fails") {
    std::string tampered = signed_msg;
    tampered[tampered.find("Bob")] = 'R';
    DkimResult r = verify_dkim(*resolver, tampered);
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "fail");
    CHECK(r.signatures[0].reason == "body hash mismatch");
  }
  SUBCASE("a signed header changed fails") {
    std::string tampered = signed_msg;
    tampered.replace(tampered.find("Subject: test"), 13, "Subject: tezt");
    DkimResult r = verify_dkim(*resolver, tampered);
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "fail");
  }
  SUBCASE("signed with another key than the published one fails") {
    std::string forged = testing::dkim_signed(kMessage, other, "sel", "example.test");
    DkimResult r = verify_dkim(*resolver, forged);
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "fail");
  }
  SUBCASE("no key in DNS is permerror, a revoked key too") {
    DkimResult r = verify_dkim(*resolver, testing::dkim_signed(kMessage, key, "nokey", "example.test"));
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "permerror");
    r = verify_dkim(*resolver, testing::dkim_signed(kMessage, key, "revoked", "example.test"));
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "permerror");
  }
  SUBCASE("every signature gets its own result") {
    std::string twice = testing::dkim_signed(signed_msg, other, "wrong", "example.test");
    twice = testing::dkim_signed(twice, key, "nokey", "example.test");
    DkimResult r = verify_dkim(*resolver, twice);
    REQUIRE(r.signatures.size() == 3);
    CHECK(r.verdict == Verdict::kPass);
    int pass = 0, permerror = 0;
    for (const auto& s : r.signatures) {
      pass += s.verdict == Verdict::kPass;
      permerror += s.verdict == Verdict::kPermerror;
    }
    CHECK(pass == 2);  // "sel" and "wrong" both verify
    CHECK(permerror == 1);
  }
  SUBCASE("a broken signature is permerror") {
    std::string broken = "DKIM-Signature: v=1; a=rsa-sha256; d=example.test; s=sel; b=\r\n" + kMessage;
    DkimResult r = verify_dkim(*resolver, broken);
    if (r.signatures.empty()) {
      CHECK(r.verdict == Verdict::kPermerror);
    } else {
      CHECK(to_string(r.signatures[0].verdict) == "permerror");
    }
  }
  SUBCASE("a key look-up that fails for one signature does not hide the others") {
    // dnsmasq forwards slow.test to a loopback port where nothing listens:
    // that key look-up fails (SERVFAIL or timeout); example.test's works.
    std::string two = testing::dkim_signed(signed_msg, key, "sel", "slow.test");
    DkimResult r = verify_dkim(*resolver, two);
    REQUIRE(r.signatures.size() == 2);
    CHECK(r.verdict == Verdict::kPass);
    CHECK(r.signatures[0].domain == "slow.test");
    CHECK(to_string(r.signatures[0].verdict) == "temperror");
    CHECK(r.signatures[1].domain == "example.test");
    CHECK(to_string(r.signatures[1].verdict) == "pass");
  }
  SUBCASE("the DNS server stopped: temperror") {
    dns.stop();
    DkimResult r = verify_dkim(*resolver, signed_msg);
    INFO(r.reason);
    REQUIRE(r.signatures.size() == 1);
    CHECK(to_string(r.signatures[0].verdict) == "temperror");
    CHECK(r.signatures[0].domain == "example.test");
  }
}

}  // namespace
}  // namespace holdd::auth
