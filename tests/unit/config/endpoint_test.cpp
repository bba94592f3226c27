#include "holdd/config/endpoint.h"

#include <doctest/doctest.h>

#include <string>

namespace holdd {
namespace {

TEST_CASE("parse_endpoint: HOST:PORT, bracketed IPv6, host names") {
  struct Case {
    std::string_view text;
    std::string host;
    uint16_t port;
    std::string shown;  // Endpoint::to_string
  };
  const Case cases[] = {
      {"0.0.0.0:25", "0.0.0.0", 25, "0.0.0.0:25"},
      {"[::]:25", "::", 25, "[::]:25"},
      {"127.0.0.1:2525", "127.0.0.1", 2525, "127.0.0.1:2525"},
      {"localhost:25", "localhost", 25, "localhost:25"},
      {"[2001:db8::1]:65535", "2001:db8::1", 65535, "[2001:db8::1]:65535"},
      {"mx-1.example.net:1", "mx-1.example.net", 1, "mx-1.example.net:1"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<Endpoint> ep = parse_endpoint(c.text);
    REQUIRE_MESSAGE(ep.ok(), ep.status().message());
    CHECK(ep->host == c.host);
    CHECK(ep->port == c.port);
    CHECK(ep->to_string() == c.shown);
  }
}

TEST_CASE("parse_endpoint: a default port makes the port optional and allows a bare IPv6") {
  struct Case {
    std::string_view text;
    std::string host;
    uint16_t port;
  };
  const Case cases[] = {
      {"192.0.2.1", "192.0.2.1", 53},
      {"192.0.2.1:5353", "192.0.2.1", 5353},
      {"2001:db8::53", "2001:db8::53", 53},
      {"[2001:db8::53]", "2001:db8::53", 53},
      {"[2001:db8::53]:5353", "2001:db8::53", 5353},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    Result<Endpoint> ep = parse_endpoint(c.text, 53);
    REQUIRE_MESSAGE(ep.ok(), ep.status().message());
    CHECK(ep->host == c.host);
    CHECK(ep->port == c.port);
  }
}

TEST_CASE("parse_endpoint: port 0, ports above 65535, missing ports and bad hosts are refused") {
  const std::string_view cases[] = {
      "",  "127.0.0.1",  "127.0.0.1:",  "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999",
      "127.0.0.1:25x", ":25",  "::1:25",  "[::1]",  "[::1]25",  "[::1:25", "[not-v6]:25",
      "exa mple:25",  "-bad:25",  "a..b:25",  "127.0.0.1:-1",
  };
  for (std::string_view text : cases) {
    CAPTURE(text);
    Result<Endpoint> ep = parse_endpoint(text);
    CHECK_FALSE(ep.ok());
    if (!ep.ok()) CHECK_FALSE(ep.status().message().empty());
  }
}

TEST_CASE("parse_endpoint: the reason names the problem") {
  CHECK(parse_endpoint("127.0.0.1:0").status().message().find("1 to 65535") != std::string::npos);
  CHECK(parse_endpoint("::1:25").status().message().find("brackets") != std::string::npos);
  CHECK(parse_endpoint("127.0.0.1").status().message().find("PORT") != std::string::npos);
}

}  // namespace
}  // namespace holdd
