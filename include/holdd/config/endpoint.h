#pragma once
// A network endpoint as written in holdd.toml: "0.0.0.0:25", "[::]:25",
// "127.0.0.1:2525", "localhost:25".
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "holdd/base/status.h"

namespace holdd {

struct Endpoint {
  std::string host;  // without brackets
  uint16_t port = 0;
  std::string to_string() const;  // brackets around IPv6 literals
};

// Parses "HOST:PORT", "[IPv6]:PORT", and, when `default_port` is given, "HOST",
// "[IPv6]" or a bare IPv6 address. HOST is an IPv4 address or a host name; an
// IPv6 address with a port needs brackets. Port 0 and ports above 65535 are
// invalid. The Status message says what is wrong.
Result<Endpoint> parse_endpoint(std::string_view text,
                                std::optional<uint16_t> default_port = std::nullopt);

}  // namespace holdd
