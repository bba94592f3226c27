#include "holdd/config/units.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd {
namespace {

TEST_CASE("parse_size: binary units and bare byte counts") {
  struct Case {
    std::string_view text;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"123", 123},
      {"123B", 123},
      {"4KiB", 4096},
      {"50MiB", 50ull << 20},
      {"2GiB", 2ull << 30},
      {"1TiB", 1ull << 40},
      {"50 MiB", 50ull << 20},  // a space between number and unit is fine
      {" 7B ", 7},
      {"18446744073709551615", 18446744073709551615ull},
      {"16777215TiB", 16777215ull << 40},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto got = parse_size(c.text);
    REQUIRE(got.has_value());
    CHECK(*got == c.bytes);
  }
}

TEST_CASE("parse_size: malformed, decimal units and overflow are refused") {
  const std::string_view cases[] = {
      "",       "MiB",     "fifty", "50MB", "50mib", "50 M", "-1", "1.5GiB", "50MiBx", "0x10",
      "18446744073709551616",  // 2^64
      "16777216TiB",           // 2^64 bytes
      "50 MiB B",
  };
  for (std::string_view text : cases) {
    CAPTURE(text);
    CHECK_FALSE(parse_size(text).has_value());
  }
}

TEST_CASE("parse_duration: units d h m s, combined largest first, a bare number is seconds") {
  using std::chrono::seconds;
  struct Case {
    std::string_view text;
    seconds value;
  };
  const Case cases[] = {
      {"0", seconds(0)},         {"30", seconds(30)},       {"30s", seconds(30)},
      {"5m", seconds(300)},      {"4h", seconds(14400)},    {"2d", seconds(172800)},
      {"1h30m", seconds(5400)},  {"1d2h3m4s", seconds(93784)}, {"90m", seconds(5400)},
      {" 10m ", seconds(600)},   {"0s", seconds(0)},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    auto got = parse_duration(c.text);
    REQUIRE(got.has_value());
    CHECK(got->count() == c.value.count());
  }
}

TEST_CASE("parse_duration: malformed, misordered, repeated units and overflow are refused") {
  const std::string_view cases[] = {
      "",     "m",    "5x",    "5ms",   "30m1h", "1m1m", "1h 30m", "-5s", "1.5h", "5M",
      "h30m", "5m3",  "99999999999999999999s", "9223372036854775807d",
  };
  for (std::string_view text : cases) {
    CAPTURE(text);
    CHECK_FALSE(parse_duration(text).has_value());
  }
}

}  // namespace
}  // namespace holdd
