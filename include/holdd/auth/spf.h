#pragma once
// SPF (RFC 7208) with libspf2: is the client address allowed to send mail for the
// MAIL FROM domain? Every DNS look-up goes through our Resolver (a custom libspf2
// DNS layer), so [auth] nameservers and the time bound apply to SPF too.
#include <string>
#include <string_view>

#include "holdd/auth/resolver.h"
#include "holdd/auth/verdict.h"

namespace holdd::auth {

struct SpfResult {
  Verdict verdict = Verdict::kNone;
  // The identity checked (RFC 7208 section 2.4): the MAIL FROM address, or, for
  // the null sender <>, the HELO name (checked as postmaster@HELO).
  bool helo_identity = false;
  std::string identity;  // "anna@example.com", or "mx.example.com" when helo_identity
  std::string domain;    // the domain checked, lower case (DMARC aligns with it)
  std::string reason;    // for logs and the A-R comment on errors; may be ""
};

// Evaluates SPF for one message. `client_ip` is "192.0.2.1" or "2001:db8::1";
// `helo` the HELO/EHLO argument; `mail_from` the reverse-path without brackets
// ("" for <>). `receiver` is our name, for the %{r} macro (the authserv-id).
// Blocking (DNS): call on a worker thread. Thread-safe; never throws, never
// aborts: libspf2 errors become permerror, DNS failures temperror.
// Note: libspf2 passes any loopback client (127/8, ::1) without a look-up.
SpfResult check_spf(const Resolver& resolver, std::string_view client_ip, std::string_view helo,
                    std::string_view mail_from, std::string_view receiver);

}  // namespace holdd::auth
