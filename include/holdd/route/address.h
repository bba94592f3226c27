#pragma once
// RFC 5321 paths ("<anna@example.com>") and the mailbox key holdd files mail under.
#include <optional>
#include <string>
#include <string_view>

#include "holdd/base/ascii.h"
#include "holdd/config/config.h"  // LocalPartCase

namespace holdd {

// An address local@domain as the client wrote it (quoted local parts are kept
// quoted; a source route "@a,@b:" is dropped, RFC 5321 4.1.1.3 / C).
struct Address {
  std::string local;   // exactly as given (quotes and case kept)
  std::string domain;  // as given; "[192.0.2.1]" for an address literal
  bool had_source_route = false;

  std::string to_string() const { return local + "@" + domain; }
  // The key of the mailbox this address names: local + "@" + lower-case domain,
  // with the local part unquoted when the quotes are not needed and, with
  // kInsensitive, ASCII-lower-cased too (SPEC: "compared case-insensitively
  // (ASCII) in the domain and, by default, in the local part too"). Bytes >= 0x80
  // are kept as they are: folding UTF-8 needs Unicode tables, and no server
  // agrees on it.
  std::string mailbox_key(LocalPartCase local_part_case) const;
  // True for local parts that ask for routing through us: '%', '!' or '@'
  // (in a quoted local part). Never relayed (open-relay defence, Postfix's
  // allow_untrusted_routing = no).
  bool asks_for_routing() const;
  bool is_address_literal() const { return !domain.empty() && domain.front() == '['; }
};

struct PathParse {
  std::optional<Address> address;  // nullopt with ok: the null path "<>"
  std::string rest;                // text after the closing '>' (ESMTP parameters)
  std::string error;               // non-empty: why the path is malformed (501 5.1.3/5.5.4)
  bool ok() const { return error.empty(); }
};

// Parses "<path> params..." as it follows "MAIL FROM:" or "RCPT TO:" (leading
// spaces allowed). `utf8` permits UTF-8 in local part and domain (SMTPUTF8).
// Paths longer than 256 octets (RFC 5321 4.5.3.1.3) are errors.
PathParse parse_path(std::string_view text, bool allow_null, bool utf8);

// A mailbox key (as mailbox_key() made it, under either rule) under the
// kInsensitive rule: ASCII letters lower-cased, everything else kept. The spool
// uses it to find the keys an older holdd, or local_part_case = "exact", stored.
std::string fold_mailbox_key(std::string_view mailbox_key);

// Parses a bare "local@domain" (no brackets), as holdctl and the directory files
// use. nullopt when malformed.
std::optional<Address> parse_address(std::string_view text);

}  // namespace holdd
