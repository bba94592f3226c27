#pragma once
// What a session knows about its client: address, greeting, TLS.
#include <cstdint>
#include <optional>
#include <string>

#include "holdd/smtp/message_headers.h"

namespace holdd::smtp {

struct ClientInfo {
  std::string ip;        // "192.0.2.1", "2001:db8::1" (v4-mapped v6 shown as v4)
  uint16_t port = 0;
  std::string rdns;      // reverse DNS name; "" when unknown (not looked up yet)
  std::string helo;      // HELO/EHLO argument; "" before it
  bool esmtp = false;    // greeted with EHLO
  std::optional<TlsInfo> tls;  // set once STARTTLS completed

  // "helo [ip]" (or "unknown [ip]" before HELO): MessageMeta::client, logs.
  std::string describe() const {
    return (helo.empty() ? std::string("unknown") : helo) + " [" + ip + "]";
  }
};

}  // namespace holdd::smtp
