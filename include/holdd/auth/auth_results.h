#pragma once
// The Authentication-Results: header field (RFC 8601) holdd prepends, and the
// removal of forged ones (RFC 8601 section 5): a field that claims our
// authserv-id on an incoming message was not written by us.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "holdd/auth/dkim.h"
#include "holdd/auth/dmarc.h"
#include "holdd/auth/spf.h"

namespace holdd::auth {

// What was checked; an absent method (disabled) is left out of the header.
struct AuthResults {
  std::optional<SpfResult> spf;
  std::optional<DkimResult> dkim;
  std::optional<DmarcResult> dmarc;
};

// "Authentication-Results: mx1.example.com;\r\n"
// "\tspf=pass smtp.mailfrom=anna@example.com;\r\n"
// "\tdkim=pass header.d=example.com header.s=sel header.b=abcdefgh;\r\n"
// "\tdmarc=pass header.from=example.com policy.dmarc=reject\r\n"
// One dkim= line per signature. Errors get a comment: "spf=temperror (DNS timeout)".
// No method at all: "Authentication-Results: mx1.example.com; none\r\n".
// Values that are not plain tokens are written as quoted strings; CR, LF and
// other controls never reach the output.
std::string format_authentication_results(std::string_view authserv_id, const AuthResults& results);

// Removes from the header block of `message` every Authentication-Results:
// field (with its continuation lines) whose authserv-id equals `authserv_id`,
// ignoring case. Other A-R fields, other headers and the body are untouched.
// Returns how many fields were removed (0: `message` unchanged, nothing copied).
std::size_t remove_own_results(std::string& message, std::string_view authserv_id);

// Same, for a message held elsewhere: the message without our forged fields.
std::string without_own_results(std::string_view message, std::string_view authserv_id);

}  // namespace holdd::auth
