#include "holdd/auth/org_domain.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd::auth {
namespace {

TEST_CASE("PublicSuffixList: longest rule, wildcards and exceptions") {
  PublicSuffixList psl = PublicSuffixList::parse(
      "// comment\n"
      "com\nuk\nco.uk\n"
      "*.ck\n!www.ck\n"
      "github.io  trailing words are ignored\n");
  struct Case {
    std::string domain, org;
  };
  const Case cases[] = {
      {"example.com", "example.com"},
      {"mail.Example.COM.", "example.com"},
      {"a.b.example.co.uk", "example.co.uk"},
      {"example.uk", "example.uk"},
      {"co.uk", "co.uk"},                   // a public suffix itself
      {"com", "com"},
      {"foo.bar.ck", "foo.bar.ck"},         // *.ck: bar.ck is a suffix
      {"a.foo.bar.ck", "foo.bar.ck"},
      {"www.ck", "www.ck"},                 // !www.ck
      {"a.www.ck", "www.ck"},
      {"anna.github.io", "anna.github.io"},
      {"x.unlisted", "x.unlisted"},         // the implicit "*" rule
      {"a.b.unlisted", "b.unlisted"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.domain);
    CHECK(psl.organizational_domain(c.domain) == c.org);
  }
}

TEST_CASE("PublicSuffixList::system: Debian's list when installed, else the heuristic") {
  const PublicSuffixList& psl = PublicSuffixList::system();
  CHECK(psl.organizational_domain("mail.example.com") == "example.com");
  CHECK(psl.organizational_domain("mail.example.co.uk") == "example.co.uk");
  CHECK(psl.organizational_domain("a.b.example.com.au") == "example.com.au");
  if (psl.is_heuristic()) {
    MESSAGE("publicsuffix is not installed: heuristic organizational domains");
  } else {
    CHECK(psl.organizational_domain("anna.github.io") == "anna.github.io");
  }
}

TEST_CASE("PublicSuffixList: an empty list is the implicit \"*\" rule only") {
  PublicSuffixList psl = PublicSuffixList::parse("");
  CHECK(psl.organizational_domain("a.b.example.co.uk") == "co.uk");
  CHECK(psl.organizational_domain("localhost") == "localhost");
}

}  // namespace
}  // namespace holdd::auth
