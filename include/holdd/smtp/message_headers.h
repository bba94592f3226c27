#pragma once
// The header fields holdd reads in, and prepends to, every message it stores
// (SPEC "SMTP intake": Received:, Authentication-Results:, Message-ID: when
// missing). Pure text functions, no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "holdd/base/clock.h"
#include "holdd/net/tls_info.h"

namespace holdd::smtp {

// What the header section of a message says about loops and identity.
struct HeaderSummary {
  uint32_t received = 0;        // "Received:" fields (RFC 5321 6.3 loop detection)
  bool has_message_id = false;  // a "Message-ID:" field is present
};

// Scans the header section of the content (base/header_section.h, the section the
// auth checks read too): fields up to the first empty line, or the first line that
// is neither a field nor a continuation, or the end. Field names compare
// case-insensitively; obsolete "Name :" is accepted.
HeaderSummary scan_headers(std::string_view content);

struct ReceivedInfo {
  std::string helo;         // as the client gave it (sanitized here)
  bool esmtp = true;        // EHLO (ESMTP) or HELO (SMTP)
  std::string client_name;  // reverse DNS; "" -> "unknown"
  std::string client_ip;    // "192.0.2.1" or "2001:db8::1"
  std::string hostname;     // ours
  std::string queue_id;
  std::optional<std::string> single_rcpt;  // the "for" clause: only with one recipient
  std::optional<TlsInfo> tls;
  SysTime when;
};

// "Received: from HELO (NAME [IP])\r\n\tby HOST (holdd) with ESMTP id ID\r\n\tfor <R>; DATE\r\n"
// (RFC 5321 4.4; protocol ESMTPS with TLS, RFC 3848; IPv6 as "IPv6:...").
std::string received_header(const ReceivedInfo& info);

// "Message-ID: <ID.UNIXTIME@HOST>\r\n".
std::string message_id_header(std::string_view queue_id, SysTime when, std::string_view hostname);

}  // namespace holdd::smtp
