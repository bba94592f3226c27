#include "holdd/route/address.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd {
namespace {

using namespace std::string_view_literals;

TEST_CASE("parse_path: valid paths give local part, domain and the ESMTP rest") {
  struct Case {
    std::string_view text;
    std::string local, domain, rest;
    bool source_route;
  };
  const Case cases[] = {
      {"<anna@example.com>", "anna", "example.com", "", false},
      {"  <anna@example.com>", "anna", "example.com", "", false},  // "MAIL FROM: <...>"
      {"<Anna.Smith@Example.COM>", "Anna.Smith", "Example.COM", "", false},
      {"<anna@example.com> SIZE=1000 BODY=8BITMIME", "anna", "example.com", "SIZE=1000 BODY=8BITMIME", false},
      {"<anna@example.com>   NOTIFY=NEVER  ", "anna", "example.com", "NOTIFY=NEVER", false},
      {"<anna@example.com>\r\n", "anna", "example.com", "", false},
      {"<@relay.example:anna@example.com>", "anna", "example.com", "", true},
      {"<@a.example,@b.example:anna@example.com>", "anna", "example.com", "", true},
      {"<\"anna smith\"@example.com>", "\"anna smith\"", "example.com", "", false},
      {"<\"a>b\"@example.com>", "\"a>b\"", "example.com", "", false},  // '>' inside quotes
      {"<\"a\\\"b\"@example.com>", "\"a\\\"b\"", "example.com", "", false},
      {"<\"\"@example.com>", "\"\"", "example.com", "", false},
      {"<a!#$%&'*+-/=?^_`{|}~z@example.com>", "a!#$%&'*+-/=?^_`{|}~z", "example.com", "", false},
      {"<anna@[192.0.2.1]>", "anna", "[192.0.2.1]", "", false},
      {"<anna@[IPv6:2001:db8::1]>", "anna", "[IPv6:2001:db8::1]", "", false},
      {"<anna@[ipv6:::1]>", "anna", "[ipv6:::1]", "", false},
      {"<anna@[x-tag:opaque]>", "anna", "[x-tag:opaque]", "", false},  // General-address-literal
      {"<anna@localhost>", "anna", "localhost", "", false},
      {"<anna@1example.com>", "anna", "1example.com", "", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    PathParse p = parse_path(c.text, /*allow_null=*/false, /*utf8=*/false);
    REQUIRE_MESSAGE(p.ok(), p.error);
    REQUIRE(p.address.has_value());
    CHECK(p.address->local == c.local);
    CHECK(p.address->domain == c.domain);
    CHECK(p.address->had_source_route == c.source_route);
    CHECK(p.rest == c.rest);
  }
}

TEST_CASE("parse_path: the null path <> only where allowed") {
  PathParse from = parse_path("<>", /*allow_null=*/true, false);
  CHECK(from.ok());
  CHECK_FALSE(from.address.has_value());
  PathParse with_params = parse_path(" <> SIZE=10", true, false);
  CHECK(with_params.ok());
  CHECK(with_params.rest == "SIZE=10");
  PathParse rcpt = parse_path("<>", /*allow_null=*/false, false);
  CHECK_FALSE(rcpt.ok());
}

TEST_CASE("parse_path: malformed paths are errors with a reason") {
  const std::string_view cases[] = {
      "",
      "   ",
      "anna@example.com",            // no brackets
      "<anna@example.com",           // no '>'
      "anna@example.com>",           // no '<'
      "<<anna@example.com>>",        // unbalanced
      "<anna@example.com>>",         // unbalanced
      "<anna@example.com> <x@y>",    // a second path
      "<anna>",                      // no domain
      "<@example.com>",              // empty local part after a source route attempt
      "<anna@>",                     // empty domain
      "<anna@@example.com>",
      "<anna@example..com>",
      "<anna@example.com.>",
      "<anna@.example.com>",
      "<anna@-example.com>",
      "<anna@example-.com>",
      "<anna@exa_mple.com>",
      "<an na@example.com>",
      "<.anna@example.com>",
      "<anna.@example.com>",
      "<an..na@example.com>",
      "<\"anna@example.com>",        // unterminated quote
      "<\"an\x01na\"@example.com>",  // control character in quotes
      "<anna@[192.0.2.256]>",
      "<anna@[IPv6:2001:db8::g]>",
      "<anna@[192.0.2.1>",
      "<anna@[]>",
      "<@relay.example anna@example.com>",
      "<@relay.example,anna@example.com>",
      "<@[192.0.2.1]:anna@example.com>",  // source route domains are names
      "<anna@example.com x>",
      "<ann\xc3\xa4@example.com>",   // UTF-8 without SMTPUTF8
      "<anna\0@example.com>"sv,
  };
  for (std::string_view text : cases) {
    CAPTURE(std::string(text));
    PathParse p = parse_path(text, /*allow_null=*/true, /*utf8=*/false);
    CHECK_FALSE(p.ok());
    CHECK_FALSE(p.address.has_value());
  }
}

TEST_CASE("parse_path: the reason says what is wrong") {
  struct Case {
    std::string_view text;
    std::string reason_part;
  };
  const Case cases[] = {
      {"anna@example.com", "'<'"},
      {"<anna@example.com", "'>'"},
      {"<anna>", "@domain"},
      {"<>", "null path"},
      {"<ann\xc3\xa4@example.com>", "SMTPUTF8"},
      {"<\"anna@example.com>", "unterminated"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.text));
    PathParse p = parse_path(c.text, false, false);
    CHECK(p.error.find(c.reason_part) != std::string::npos);
  }
}

TEST_CASE("parse_path: length limits of RFC 5321 4.5.3.1") {
  const std::string local64(64, 'a');
  const std::string label63(63, 'b');
  // A 64-octet local part is fine, 65 is not.
  CHECK(parse_path("<" + local64 + "@example.com>", false, false).ok());
  CHECK_FALSE(parse_path("<" + local64 + "a@example.com>", false, false).ok());
  // A 63-octet label is fine, 64 is not.
  CHECK(parse_path("<a@" + label63 + ".com>", false, false).ok());
  CHECK_FALSE(parse_path("<a@" + label63 + "b.com>", false, false).ok());
  // The whole path, brackets included, may have 256 octets.
  std::string domain = label63 + "." + label63 + "." + label63 + ".";  // 192 octets
  std::string fits = "<" + local64 + "@" + domain.substr(0, 256 - 2 - 64 - 1 - 3) + "com>";
  REQUIRE(fits.size() == 256);
  CHECK(parse_path(fits, false, false).ok());
  std::string too_long = "<" + local64 + "@" + domain.substr(0, 256 - 2 - 64 - 1 - 3) + "comm>";
  REQUIRE(too_long.size() == 257);
  PathParse p = parse_path(too_long, false, false);
  CHECK_FALSE(p.ok());
  CHECK(p.error.find("256") != std::string::npos);
}

TEST_CASE("parse_path: UTF-8 with SMTPUTF8, only well-formed") {
  PathParse ok = parse_path("<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", false, /*utf8=*/true);
  REQUIRE_MESSAGE(ok.ok(), ok.error);
  CHECK(ok.address->local == "j\xc3\xb6rg");
  CHECK(parse_path("<\"j\xc3\xb6 rg\"@example.com>", false, true).ok());
  const std::string_view bad[] = {
      "<j\xc3@example.com>",          // truncated sequence
      "<j\xc0\xafrg@example.com>",    // overlong '/'
      "<j\xed\xa0\x80@example.com>",  // surrogate
      "<j\xff@example.com>",
  };
  for (std::string_view text : bad) {
    CAPTURE(std::string(text));
    CHECK_FALSE(parse_path(text, false, true).ok());
  }
}

TEST_CASE("parse_address: a bare local@domain, as in directory files and holdctl") {
  struct Case {
    std::string_view text;
    bool ok;
    std::string local, domain;
  };
  const Case cases[] = {
      {"anna@example.com", true, "anna", "example.com"},
      {"  anna@Example.com \n", true, "anna", "Example.com"},
      {"\"a b\"@example.com", true, "\"a b\"", "example.com"},
      {"anna@[192.0.2.1]", true, "anna", "[192.0.2.1]"},
      {"j\xc3\xb6rg@example.com", true, "j\xc3\xb6rg", "example.com"},
      {"<anna@example.com>", false, "", ""},
      {"anna", false, "", ""},
      {"anna@", false, "", ""},
      {"@example.com", false, "", ""},
      {"@a.example:anna@example.com", false, "", ""},
      {"anna@example.com extra", false, "", ""},
      {"anna@example.com,bob@example.com", false, "", ""},
      {"", false, "", ""},
      {"j\xc3@example.com", false, "", ""},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.text));
    std::optional<Address> a = parse_address(c.text);
    REQUIRE(a.has_value() == c.ok);
    if (!a) continue;
    CHECK(a->local == c.local);
    CHECK(a->domain == c.domain);
  }
}

TEST_CASE("Address::mailbox_key: domain lower-cased, local part by the rule, needless quotes dropped") {
  struct Case {
    std::string_view text;
    std::string exact;        // local_part_case = "exact"
    std::string insensitive;  // the default
  };
  const Case cases[] = {
      {"anna@example.com", "anna@example.com", "anna@example.com"},
      {"Anna@EXAMPLE.com", "Anna@example.com", "anna@example.com"},
      {"John.Smith@Example.COM", "John.Smith@example.com", "john.smith@example.com"},
      {"\"anna\"@example.com", "anna@example.com", "anna@example.com"},
      {"\"Anna.Smith\"@Example.com", "Anna.Smith@example.com", "anna.smith@example.com"},
      {"\"Anna Smith\"@example.com", "\"Anna Smith\"@example.com", "\"anna smith\"@example.com"},
      {"\"a\\B\"@example.com", "aB@example.com", "ab@example.com"},
      {"\"\"@example.com", "\"\"@example.com", "\"\"@example.com"},
      // Only ASCII folds: U+00C4 (C3 84) stays, its lower-case U+00E4 is another key.
      {"\xc3\x84nna@example.com", "\xc3\x84nna@example.com", "\xc3\x84nna@example.com"},
      {"B\xc3\x84@example.com", "B\xc3\x84@example.com", "b\xc3\x84@example.com"},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.text));
    std::optional<Address> a = parse_address(c.text);
    REQUIRE(a.has_value());
    CHECK(a->mailbox_key(LocalPartCase::kExact) == c.exact);
    CHECK(a->mailbox_key(LocalPartCase::kInsensitive) == c.insensitive);
    // The spool's migration relies on this: folding an exact key gives the
    // insensitive one.
    CHECK(fold_mailbox_key(c.exact) == c.insensitive);
    CHECK(a->to_string() == std::string(c.text));
  }
}

TEST_CASE("Address::asks_for_routing: percent hack, bang paths and quoted '@'") {
  struct Case {
    std::string_view text;
    bool routing;
  };
  const Case cases[] = {
      {"anna@example.com", false},
      {"anna%other.example@example.com", true},
      {"other.example!anna@example.com", true},
      {"\"anna@other.example\"@example.com", true},
      {"anna+tag@example.com", false},
  };
  for (const Case& c : cases) {
    CAPTURE(std::string(c.text));
    std::optional<Address> a = parse_address(c.text);
    REQUIRE(a.has_value());
    CHECK(a->asks_for_routing() == c.routing);
  }
}

TEST_CASE("Address::is_address_literal and to_lower_ascii") {
  CHECK(parse_address("a@[192.0.2.1]")->is_address_literal());
  CHECK_FALSE(parse_address("a@example.com")->is_address_literal());
  CHECK(to_lower_ascii("MiXeD.Example\xc3\x84") == "mixed.example\xc3\x84");  // non-ASCII untouched
}

TEST_CASE("parse_path: random input never breaks the invariants") {
  // Deterministic pseudo-random paths from the characters that matter to the grammar.
  const std::string_view alphabet = "<>@.:,\"\\[]a-Z09%! \t\xc3\xa4\x01#";
  uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return seed >> 16;
  };
  for (int n = 0; n < 20000; ++n) {
    std::string text = "<";
    size_t len = next() % 24;
    for (size_t i = 0; i < len; ++i) text += alphabet[next() % alphabet.size()];
    if (next() % 2) text += ">";
    for (bool utf8 : {false, true}) {
      CAPTURE(text);
      PathParse p = parse_path(text, /*allow_null=*/true, utf8);
      if (!p.ok()) {
        CHECK_FALSE(p.address.has_value());
        continue;
      }
      if (!p.address) continue;
      // What parse_path accepts, parse_address reads back the same way.
      std::optional<Address> again = parse_address(p.address->to_string());
      REQUIRE(again.has_value());
      CHECK(again->local == p.address->local);
      CHECK(again->domain == p.address->domain);
      for (LocalPartCase rule : {LocalPartCase::kExact, LocalPartCase::kInsensitive}) {
        CHECK(again->mailbox_key(rule) == p.address->mailbox_key(rule));
      }
      CHECK(fold_mailbox_key(p.address->mailbox_key(LocalPartCase::kExact)) ==
            p.address->mailbox_key(LocalPartCase::kInsensitive));
    }
  }
}

// Found by fuzz/address_fuzzer.cpp: inet_pton stops at a NUL, so an address
// literal with a NUL after a valid IP took any bytes that followed into the domain.
TEST_CASE("parse_path: a NUL inside an address literal is an error") {
  using namespace std::string_view_literals;
  for (std::string_view text : {"<u@[192.0.2.1\0junk]>"sv, "<u@[IPv6:::1\0x]>"sv, "<u@[tag:a\0b]>"sv}) {
    CAPTURE(text);
    PathParse p = parse_path(text, false, true);
    CHECK_FALSE(p.ok());
    CHECK_FALSE(p.address.has_value());
  }
  CHECK_FALSE(parse_address("u@[192.0.2.1\0junk]"sv).has_value());
}

}  // namespace
}  // namespace holdd
