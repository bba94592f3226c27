#include "holdd/auth/header_block.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd::auth {
namespace {

TEST_CASE("header_fields: fields with continuation lines, up to the empty line") {
  const std::string m =
      "From: Anna\r\n <anna@example.com>\r\nSubject:  hi \r\nX-Empty:\r\n\r\nNot: a header\r\n";
  auto fields = header_fields(m);
  REQUIRE(fields.size() == 3);
  CHECK(std::string(fields[0].name) == "From");
  CHECK(unfold(fields[0].value) == "Anna <anna@example.com>");
  CHECK(fields[0].begin == 0);
  CHECK(m.substr(fields[0].end, 8) == "Subject:");
  CHECK(unfold(fields[1].value) == "hi");
  CHECK(unfold(fields[2].value).empty());
  CHECK(fields[2].end == m.find("\r\n\r\n") + 2);
}

TEST_CASE("header_fields: a line without a colon ends the header block") {
  CHECK(header_fields("Subject: x\r\nnot a header\r\nTo: y\r\n").size() == 1);
  CHECK(header_fields("").empty());
  CHECK(header_fields("\r\nSubject: body\r\n").empty());
}

TEST_CASE("iequals and to_lower are ASCII-only") {
  CHECK(iequals("Authentication-Results", "AUTHENTICATION-results"));
  CHECK_FALSE(iequals("From", "Fro"));
  CHECK(to_lower("MX1.Example.COM") == "mx1.example.com");
}

}  // namespace
}  // namespace holdd::auth
