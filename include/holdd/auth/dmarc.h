#pragma once
// DMARC (RFC 7489): does the RFC5322.From domain align with a domain that SPF or
// DKIM authenticated? The policy record comes from DNS (_dmarc.<From domain>,
// then _dmarc.<organizational domain>). The verdict is recorded, never enforced.
#include <optional>
#include <string>
#include <string_view>

#include "holdd/auth/dkim.h"
#include "holdd/auth/org_domain.h"
#include "holdd/auth/resolver.h"
#include "holdd/auth/spf.h"
#include "holdd/auth/verdict.h"

namespace holdd::auth {

enum class Alignment { kRelaxed, kStrict };

struct DmarcRecord {
  std::string p;                     // "none", "quarantine", "reject"
  std::string sp;                    // subdomain policy; "" when absent
  Alignment adkim = Alignment::kRelaxed;
  Alignment aspf = Alignment::kRelaxed;
};

struct DmarcResult {
  Verdict verdict = Verdict::kNone;  // pass, fail, none, temperror, permerror
  std::string from_domain;           // header.from, lower case; "" when unknown
  std::string policy;                // policy.dmarc: p (or sp for a subdomain); "" without a record
  std::string reason;
};

// The From: domain of a message's header block. nullopt when there is no
// From: field or no domain in it; "" (an empty string) when it is ambiguous:
// several From: fields, or several addresses with different domains.
std::optional<std::string> from_domain(std::string_view message);

// Parses a TXT record. nullopt when it is not a DMARC record (does not start
// with "v=DMARC1"); a record whose p= is missing or invalid gets p = "" (a
// permerror, unless rua= is present: then p = "none", RFC 7489 section 6.6.3).
std::optional<DmarcRecord> parse_dmarc_record(std::string_view txt);

// RFC 7489 section 3.1: strict alignment wants equal domains, relaxed equal
// organizational domains. Case-insensitive.
bool is_aligned(std::string_view from_domain, std::string_view authenticated_domain,
                Alignment mode, const PublicSuffixList& psl);

// The DMARC verdict once the record is known (pure: no DNS). Pass when SPF
// passed for an aligned domain or any DKIM signature passed for an aligned d=;
// otherwise temperror when an SPF or aligned DKIM check could not complete,
// else fail. `spf` and `dkim` may be absent (that check is disabled).
Verdict evaluate_dmarc(std::string_view from_domain, const DmarcRecord& record,
                       const SpfResult* spf, const DkimResult* dkim,
                       const PublicSuffixList& psl);

// The whole check: From: domain, policy look-up, evaluation. Blocking (DNS).
DmarcResult check_dmarc(const Resolver& resolver, std::string_view message,
                        const SpfResult* spf, const DkimResult* dkim,
                        const PublicSuffixList& psl = PublicSuffixList::system());

}  // namespace holdd::auth
