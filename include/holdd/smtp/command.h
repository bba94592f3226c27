#pragma once
// One SMTP command line (without its CRLF) parsed into verb, path and ESMTP
// parameters (RFC 5321 4.1, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8,
// RFC 3461 DSN, RFC 3030 BDAT). Pure: no I/O, no session state. Whether a
// command is allowed now is the session's question; whether it is well-formed
// is answered here, as a ready-made refusal in `error`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "holdd/route/address.h"
#include "holdd/smtp/reply.h"

namespace holdd::smtp {

enum class Verb {
  kEhlo, kHelo, kMail, kRcpt, kData, kBdat, kRset, kNoop, kQuit, kVrfy, kHelp,
  kStarttls,
  kNotImplemented,  // EXPN, TURN, ETRN, AUTH, ...: known, not offered (502)
  kUnknown,         // 500 5.5.2
};

enum class BodyType { kUnspecified, k7Bit, k8BitMime };

// MAIL FROM parameters.
struct MailParams {
  std::optional<uint64_t> size;  // SIZE= (saturates at UINT64_MAX)
  BodyType body = BodyType::kUnspecified;
  bool smtputf8 = false;
  std::string ret;    // RET= upper-cased: "FULL" or "HDRS"; "" if absent
  std::string envid;  // ENVID= xtext as received; "" if absent
};

// RCPT TO parameters.
struct RcptParams {
  std::string notify;  // NOTIFY= upper-cased ("NEVER" or a list of SUCCESS,FAILURE,DELAY)
  std::string orcpt;   // ORCPT= as received ("rfc822;anna@example.com")
};

struct Command {
  Verb verb = Verb::kUnknown;
  std::string argument;  // text after the verb and one space, as sent
  // MAIL / RCPT: the path. nullopt with a MAIL means the null sender <>.
  std::optional<Address> path;
  bool non_ascii_path = false;  // the path holds UTF-8 (needs SMTPUTF8)
  MailParams mail;
  RcptParams rcpt;
  // BDAT
  uint64_t chunk_size = 0;
  bool last = false;
  // Set when the line is malformed: the reply to send instead of acting on it.
  // For BDAT, a malformed line has no usable chunk size.
  std::optional<Reply> error;
};

// Longest command line, including its CRLF (SPEC: 1000, RFC 5321 4.5.3.1.4).
inline constexpr size_t kMaxCommandLine = 1000;

// REQUIRES: `line` has no CRLF (LineReader strips it).
Command parse_command(std::string_view line);

// RFC 3461 4: xtext is printable ASCII except '+' and '=', or "+XX" hex.
bool is_xtext(std::string_view s);

}  // namespace holdd::smtp
