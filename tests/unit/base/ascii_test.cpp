#include "holdd/base/ascii.h"

#include <doctest/doctest.h>

namespace holdd {
namespace {

TEST_CASE("iequals, istarts_with and to_lower_ascii are ASCII-only") {
  CHECK(iequals("Authentication-Results", "AUTHENTICATION-results"));
  CHECK_FALSE(iequals("From", "Fro"));
  CHECK_FALSE(iequals("caf\xc3\xa9", "CAF\xc3\x89"));  // no Unicode case folding
  CHECK(istarts_with("Received: x", "RECEIVED:"));
  CHECK_FALSE(istarts_with("Rec", "Received"));
  CHECK(to_lower_ascii("MX1.Example.COM") == "mx1.example.com");
  CHECK(to_lower_ascii("\xc3\x89") == "\xc3\x89");
}

}  // namespace
}  // namespace holdd
