#include "holdd/auth/auth_results.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd::auth {
namespace {

SpfResult spf(Verdict v, std::string identity, bool helo = false, std::string reason = "") {
  SpfResult r;
  r.verdict = v;
  r.identity = std::move(identity);
  r.helo_identity = helo;
  r.reason = std::move(reason);
  return r;
}

DkimSignatureResult sig(Verdict v, std::string d, std::string s, std::string b) {
  DkimSignatureResult r;
  r.verdict = v;
  r.domain = std::move(d);
  r.selector = std::move(s);
  r.b_prefix = std::move(b);
  return r;
}

TEST_CASE("format_authentication_results: one method a line, RFC 8601 syntax") {
  AuthResults all;
  all.spf = spf(Verdict::kPass, "anna@example.com");
  all.dkim = DkimResult{};
  all.dkim->signatures.push_back(sig(Verdict::kPass, "example.com", "sel", "abcdefgh"));
  all.dmarc = DmarcResult{Verdict::kPass, "example.com", "reject", ""};

  AuthResults two_sigs;
  two_sigs.dkim = DkimResult{};
  two_sigs.dkim->signatures.push_back(sig(Verdict::kFail, "a.example", "s1", "AAAAAAAA"));
  two_sigs.dkim->signatures.push_back(sig(Verdict::kPass, "b.example", "s2", "BBBBBBBB"));

  AuthResults unsigned_msg;
  unsigned_msg.dkim = DkimResult{};

  AuthResults null_sender;
  null_sender.spf = spf(Verdict::kSoftfail, "mx.example.net", true);

  AuthResults errors;
  errors.spf = spf(Verdict::kTemperror, "a@b.example", false, "DNS failure");
  errors.dmarc = DmarcResult{Verdict::kNone, "", "", "no From: domain"};

  AuthResults hostile;  // values from the client never break the header
  hostile.spf = spf(Verdict::kFail, "\"a b\"@x.example\r\nX-Evil: 1", false, "bad (x)\r\n");
  hostile.spf->verdict = Verdict::kPermerror;

  struct Case {
    const char* name;
    AuthResults results;
    std::string header;
  };
  const Case cases[] = {
      {"all three", all,
       "Authentication-Results: mx1.example.com;\r\n"
       "\tspf=pass smtp.mailfrom=anna@example.com;\r\n"
       "\tdkim=pass header.d=example.com header.s=sel header.b=abcdefgh;\r\n"
       "\tdmarc=pass header.from=example.com policy.dmarc=reject\r\n"},
      {"one dkim line per signature", two_sigs,
       "Authentication-Results: mx1.example.com;\r\n"
       "\tdkim=fail header.d=a.example header.s=s1 header.b=AAAAAAAA;\r\n"
       "\tdkim=pass header.d=b.example header.s=s2 header.b=BBBBBBBB\r\n"},
      {"no signature", unsigned_msg, "Authentication-Results: mx1.example.com;\r\n\tdkim=none\r\n"},
      {"null sender: the HELO identity", null_sender,
       "Authentication-Results: mx1.example.com;\r\n\tspf=softfail smtp.helo=mx.example.net\r\n"},
      {"errors carry a comment, none does not", errors,
       "Authentication-Results: mx1.example.com;\r\n"
       "\tspf=temperror (DNS failure) smtp.mailfrom=a@b.example;\r\n"
       "\tdmarc=none\r\n"},
      {"hostile values are quoted, controls dropped", hostile,
       "Authentication-Results: mx1.example.com;\r\n"
       "\tspf=permerror (bad x) smtp.mailfrom=\"\\\"a b\\\"@x.exampleX-Evil: 1\"\r\n"},
      {"nothing checked", AuthResults{}, "Authentication-Results: mx1.example.com; none\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    CHECK(format_authentication_results("mx1.example.com", c.results) == c.header);
  }
}

TEST_CASE("remove_own_results: only A-R fields with our authserv-id go, folded lines with them") {
  const std::string body = "\r\nbody line\r\nAuthentication-Results: mx1.example.com; spf=pass\r\n";
  struct Case {
    const char* name;
    std::string headers, kept;
    std::size_t removed;
  };
  const Case cases[] = {
      {"ours, one line",
       "Authentication-Results: mx1.example.com; spf=pass smtp.mailfrom=a@b\r\nSubject: x\r\n",
       "Subject: x\r\n", 1},
      {"ours, folded",
       "Subject: x\r\nAuthentication-Results: mx1.example.com;\r\n\tspf=pass;\r\n dkim=pass\r\nTo: y\r\n",
       "Subject: x\r\nTo: y\r\n", 1},
      {"case of name and id ignored",
       "authentication-results: MX1.Example.COM; dkim=pass\r\nSubject: x\r\n", "Subject: x\r\n", 1},
      {"id folded onto the next line, comments before it",
       "Authentication-Results: (forged)\r\n  mx1.example.com (x); dmarc=pass\r\nSubject: x\r\n",
       "Subject: x\r\n", 1},
      {"quoted id", "Authentication-Results: \"mx1.example.com\"; spf=pass\r\n", "", 1},
      {"no result", "Authentication-Results: mx1.example.com; none\r\n", "", 1},
      {"version after the id", "Authentication-Results: mx1.example.com 1; spf=pass\r\n", "", 1},
      {"space before the colon", "Authentication-Results : mx1.example.com; spf=pass\r\n", "", 1},
      {"other authserv-ids kept",
       "Authentication-Results: mx.other.example; spf=pass\r\n"
       "Authentication-Results: mx1.example.com.evil; spf=pass\r\n"
       "Authentication-Results: sub.mx1.example.com; spf=pass\r\n",
       "Authentication-Results: mx.other.example; spf=pass\r\n"
       "Authentication-Results: mx1.example.com.evil; spf=pass\r\n"
       "Authentication-Results: sub.mx1.example.com; spf=pass\r\n",
       0},
      {"several, interleaved",
       "Authentication-Results: mx1.example.com; spf=fail\r\n"
       "Received: from a\r\n\tby b\r\n"
       "Authentication-Results: other.example; spf=pass\r\n"
       "Authentication-Results: mx1.example.com;\r\n\tdkim=pass\r\n",
       "Received: from a\r\n\tby b\r\n"
       "Authentication-Results: other.example; spf=pass\r\n",
       2},
      {"similar header names kept",
       "X-Authentication-Results: mx1.example.com; spf=pass\r\n"
       "ARC-Authentication-Results: i=1; mx1.example.com; spf=pass\r\n",
       "X-Authentication-Results: mx1.example.com; spf=pass\r\n"
       "ARC-Authentication-Results: i=1; mx1.example.com; spf=pass\r\n",
       0},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.name));
    std::string message = c.headers + body;  // the body's look-alike line stays
    CHECK(without_own_results(message, "mx1.example.com") == c.kept + body);
    CHECK(remove_own_results(message, "mx1.example.com") == c.removed);
    CHECK(message == c.kept + body);
  }
}

TEST_CASE("remove_own_results: a message without body, bare LF lines") {
  std::string headers_only = "Subject: x\r\nAuthentication-Results: mx1.example.com; spf=pass\r\n";
  CHECK(remove_own_results(headers_only, "mx1.example.com") == 1);
  CHECK(headers_only == "Subject: x\r\n");

  std::string lf = "Authentication-Results: mx1.example.com;\n\tspf=pass\nSubject: x\n\nbody\n";
  CHECK(remove_own_results(lf, "mx1.example.com") == 1);
  CHECK(lf == "Subject: x\n\nbody\n");

  std::string no_end = "Authentication-Results: mx1.example.com; spf=pass";
  CHECK(remove_own_results(no_end, "mx1.example.com") == 1);
  CHECK(no_end.empty());
}

}  // namespace
}  // namespace holdd::auth
