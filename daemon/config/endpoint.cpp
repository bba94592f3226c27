#include "holdd/config/endpoint.h"

#include <arpa/inet.h>

namespace holdd {
namespace {

bool is_ipv6(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// An IPv4 address or a host name: letters, digits, '-', '.' and '_' (seen in
// internal names); resolution and its errors come later, when binding/connecting.
bool is_host_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_';
    if (!ok) return false;
  }
  return s.front() != '.' && s.front() != '-' && s.find("..") == std::string_view::npos;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

}  // namespace

std::string Endpoint::to_string() const {
  std::string p = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + p;
  return host + ":" + p;
}

Result<Endpoint> parse_endpoint(std::string_view text, std::optional<uint16_t> default_port) {
  const std::string example = default_port ? "such as \"192.0.2.1\", \"192.0.2.1:53\" or \"[2001:db8::1]:53\""
                                           : "such as \"127.0.0.1:25\" or \"[::1]:25\"";
  Endpoint ep;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::invalid("missing ']' after the IPv6 address");
    ep.host.assign(text.substr(1, close - 1));
    if (!is_ipv6(ep.host)) return Status::invalid("\"" + ep.host + "\" is not an IPv6 address");
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::invalid("expected ':PORT' after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      // Several colons: a bare IPv6 address, which cannot carry a port.
      ep.host.assign(text);
      if (!is_ipv6(ep.host)) return Status::invalid("expected an endpoint " + example);
      if (!default_port) return Status::invalid("an IPv6 address with a port needs brackets: \"[" + ep.host + "]:25\"");
    } else {
      ep.host.assign(text.substr(0, colon));
      if (colon != std::string_view::npos) {
        port_text = text.substr(colon + 1);
        has_port = true;
      }
      if (!is_host_name(ep.host)) return Status::invalid("expected an endpoint " + example);
    }
  }
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return Status::invalid("port must be a number from 1 to 65535, got \"" + std::string(port_text) + "\"");
    ep.port = *port;
  } else if (default_port) {
    ep.port = *default_port;
  } else {
    return Status::invalid("missing ':PORT', expected an endpoint " + example);
  }
  return ep;
}

}  // namespace holdd
