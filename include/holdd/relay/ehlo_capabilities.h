#pragma once
// EhloCapabilities: what an upstream offered in its EHLO/LHLO reply (RFC 5321
// 4.1.1.1), reduced to the extensions the relay acts on. The relay never uses an
// extension the upstream did not offer: it drops optional parameters (DSN) or
// defers the message when passing it on would change it (8BITMIME, SMTPUTF8).
#include <cstdint>

#include "holdd/relay/reply_parser.h"

namespace holdd {

struct EhloCapabilities {
  bool pipelining = false;      // RFC 2920
  bool size = false;            // RFC 1870
  uint64_t max_size = 0;        // SIZE's argument; 0: offered without a limit
  bool eight_bit_mime = false;  // RFC 6152
  bool smtputf8 = false;        // RFC 6531
  bool dsn = false;             // RFC 3461
  bool starttls = false;        // RFC 3207

  // The first line of an EHLO reply is the server's greeting, the others are
  // keywords with optional arguments, case-insensitive. Unknown ones are ignored
  // (CHUNKING too: the relay always sends DATA).
  static EhloCapabilities parse(const SmtpReply& ehlo_reply);
};

}  // namespace holdd
