#pragma once
// The result of one authentication method, as RFC 8601 section 2.7 names them
// (the subset SPF, DKIM and DMARC use). holdd records verdicts, it never
// enforces them: no Verdict ever turns into a rejected message.
#include <string_view>

namespace holdd::auth {

enum class Verdict {
  kNone,       // nothing to check: no record, no signature, no From: domain
  kPass,
  kFail,
  kSoftfail,   // SPF "~all"
  kNeutral,    // SPF "?all"; DKIM signature we could not judge
  kTemperror,  // DNS timeout, SERVFAIL, our own time bound: try again later
  kPermerror,  // broken record, signature syntax, missing key
};

// "none", "pass", "fail", ... as written in Authentication-Results:.
std::string_view to_string(Verdict v);

}  // namespace holdd::auth
