#include "holdd/auth/verdict.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd::auth {
namespace {

TEST_CASE("Verdict: names are those of RFC 8601") {
  CHECK(std::string(to_string(Verdict::kNone)) == "none");
  CHECK(std::string(to_string(Verdict::kSoftfail)) == "softfail");
  CHECK(std::string(to_string(Verdict::kTemperror)) == "temperror");
  CHECK(std::string(to_string(Verdict::kPermerror)) == "permerror");
}

}  // namespace
}  // namespace holdd::auth
