#pragma once
// DKIM (RFC 6376) verification with libopendkim of every DKIM-Signature on a
// message. Public keys are fetched through our Resolver (opendkim's key look-up
// callback), so [auth] nameservers and the time bound apply.
#include <string>
#include <string_view>
#include <vector>

#include "holdd/auth/resolver.h"
#include "holdd/auth/verdict.h"

namespace holdd::auth {

struct DkimSignatureResult {
  Verdict verdict = Verdict::kNone;  // pass, fail, neutral, temperror, permerror
  std::string domain;                // d=, lower case
  std::string selector;              // s=
  std::string b_prefix;              // first 8 characters of b= (RFC 6008 header.b)
  std::string reason;                // why not pass; "" on pass
};

struct DkimResult {
  // One entry per DKIM-Signature header field, in message order (at most
  // kMaxDkimSignatures). Empty when the message has none or could not be
  // parsed; after a failed key look-up, only the signatures it concerned.
  std::vector<DkimSignatureResult> signatures;
  // The summary: none (unsigned), pass when any signature passed, else the
  // first signature's verdict, or permerror/temperror for the whole message.
  Verdict verdict = Verdict::kNone;
  std::string reason;
};

// Signatures beyond this many are not verified (each costs a DNS look-up).
inline constexpr std::size_t kMaxDkimSignatures = 10;

// Verifies `content`: the message as received (CRLF lines, dot-stuffing undone,
// without the final "."), without the headers holdd prepends. Blocking (DNS):
// call on a worker thread. Thread-safe (one opendkim handle per call, one
// library handle per process); never throws.
DkimResult verify_dkim(const Resolver& resolver, std::string_view content);

}  // namespace holdd::auth
