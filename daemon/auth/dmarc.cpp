#include "holdd/auth/dmarc.h"

#include <vector>

#include "holdd/base/ascii.h"
#include "holdd/base/header_section.h"

namespace holdd::auth {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 5322 address list -> the mailboxes' texts: comments dropped, split at
// commas outside quoted strings and angle brackets.
std::vector<std::string> mailboxes(std::string_view value) {
  std::vector<std::string> out(1);
  bool quoted = false, escaped = false, angle = false;
  int comment = 0;
  for (char c : value) {
    if (escaped) {
      escaped = false;
      if (comment == 0) out.back().push_back(c);
      continue;
    }
    if (c == '\\' && (quoted || comment > 0)) {
      escaped = true;
      continue;
    }
    if (comment > 0) {
      if (c == '(') ++comment;
      if (c == ')') --comment;
      continue;
    }
    if (c == '"') {
      quoted = !quoted;
    } else if (!quoted && c == '(') {
      ++comment;
      out.back().push_back(' ');
      continue;
    } else if (!quoted && c == '<') {
      angle = true;
    } else if (!quoted && c == '>') {
      angle = false;
    } else if (!quoted && !angle && c == ',') {
      out.emplace_back();
      continue;
    }
    out.back().push_back(c);
  }
  return out;
}

// The domain of one mailbox ("Anna <anna@example.com>", "anna@example.com",
// "group: anna@example.com;"): lower case, "" when there is none.
std::string mailbox_domain(std::string_view mb) {
  std::size_t lt = mb.rfind('<');
  if (lt != std::string_view::npos) {
    mb = mb.substr(lt + 1);
    mb = mb.substr(0, mb.find('>'));
  }
  std::size_t at = mb.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string_view d = mb.substr(at + 1);
  std::size_t end = d.find_first_of(" \t>;,");
  d = d.substr(0, end);
  while (!d.empty() && d.back() == '.') d.remove_suffix(1);
  return to_lower_ascii(d);
}

std::optional<Alignment> alignment_of(std::string_view v) {
  if (iequals(v, "r")) return Alignment::kRelaxed;
  if (iequals(v, "s")) return Alignment::kStrict;
  return std::nullopt;
}

bool is_policy(std::string_view v) {
  return iequals(v, "none") || iequals(v, "quarantine") || iequals(v, "reject");
}

// The one DMARC record at `name`: kFound with `record` set, kNxDomain/kNoData
// when there is none (or several, RFC 7489 section 6.6.3), kTemporary.
DnsStatus fetch(const Resolver& resolver, const std::string& name, DmarcRecord& record,
                std::string& error) {
  TxtReply reply = resolver.txt(name);
  if (reply.status != DnsStatus::kFound) {
    error = reply.error;
    return reply.status;
  }
  int found = 0;
  for (const std::string& txt : reply.records) {
    if (std::optional<DmarcRecord> r = parse_dmarc_record(txt)) {
      record = *r;
      ++found;
    }
  }
  return found == 1 ? DnsStatus::kFound : DnsStatus::kNoData;
}

}  // namespace

std::optional<std::string> from_domain(std::string_view message) {
  std::optional<std::string> domain;
  int from_fields = 0;
  for (const HeaderField& f : parse_header_section(message).fields) {
    if (!iequals(f.name, "From")) continue;
    if (++from_fields > 1) return std::string();  // RFC 5322 allows one From:
    for (const std::string& mb : mailboxes(unfold(f.value))) {
      std::string d = mailbox_domain(mb);
      if (d.empty()) continue;
      if (domain && *domain != d) return std::string();
      domain = d;
    }
  }
  return domain;
}

std::optional<DmarcRecord> parse_dmarc_record(std::string_view txt) {
  DmarcRecord record;
  bool first = true, has_rua = false, bad = false;
  while (!txt.empty()) {
    std::size_t semi = txt.find(';');
    std::string_view tag = trim(txt.substr(0, semi));
    txt = semi == std::string_view::npos ? std::string_view() : txt.substr(semi + 1);
    if (tag.empty()) continue;
    std::size_t eq = tag.find('=');
    std::string_view key = trim(tag.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? "" : trim(tag.substr(eq + 1));
    if (first) {  // RFC 7489 section 6.4: v=DMARC1 must come first
      if (!iequals(key, "v") || !iequals(value, "DMARC1")) return std::nullopt;
      first = false;
      continue;
    }
    if (iequals(key, "p")) {
      if (is_policy(value)) record.p = to_lower_ascii(value); else bad = true;
    } else if (iequals(key, "sp")) {
      if (is_policy(value)) record.sp = to_lower_ascii(value); else bad = true;
    } else if (iequals(key, "adkim")) {
      if (auto a = alignment_of(value)) record.adkim = *a; else bad = true;
    } else if (iequals(key, "aspf")) {
      if (auto a = alignment_of(value)) record.aspf = *a; else bad = true;
    } else if (iequals(key, "rua")) {
      has_rua = value.find(':') != std::string_view::npos;
    }
  }
  if (first) return std::nullopt;
  if (record.p.empty() || bad) {
    // RFC 7489 section 6.6.3: with a usable rua=, act as if p=none.
    record.p = has_rua ? "none" : "";
    if (record.p.empty()) record.sp.clear();
  }
  return record;
}

bool is_aligned(std::string_view from, std::string_view authenticated, Alignment mode,
                const PublicSuffixList& psl) {
  if (from.empty() || authenticated.empty()) return false;
  if (mode == Alignment::kStrict) return iequals(from, authenticated);
  return psl.organizational_domain(from) == psl.organizational_domain(authenticated);
}

Verdict evaluate_dmarc(std::string_view from, const DmarcRecord& record, const SpfResult* spf,
                       const DkimResult* dkim, const PublicSuffixList& psl) {
  bool unfinished = false;
  if (spf != nullptr && is_aligned(from, spf->domain, record.aspf, psl)) {
    if (spf->verdict == Verdict::kPass) return Verdict::kPass;
    if (spf->verdict == Verdict::kTemperror) unfinished = true;
  }
  if (dkim != nullptr) {
    for (const DkimSignatureResult& sig : dkim->signatures) {
      if (!is_aligned(from, sig.domain, record.adkim, psl)) continue;
      if (sig.verdict == Verdict::kPass) return Verdict::kPass;
      if (sig.verdict == Verdict::kTemperror) unfinished = true;
    }
    if (dkim->signatures.empty() && dkim->verdict == Verdict::kTemperror) unfinished = true;
  }
  return unfinished ? Verdict::kTemperror : Verdict::kFail;
}

DmarcResult check_dmarc(const Resolver& resolver, std::string_view message, const SpfResult* spf,
                        const DkimResult* dkim, const PublicSuffixList& psl) {
  DmarcResult result;
  std::optional<std::string> from = from_domain(message);
  if (!from) {
    result.reason = "no From: domain";
    return result;  // none
  }
  if (from->empty()) {
    result.verdict = Verdict::kPermerror;
    result.reason = "several From: domains";
    return result;
  }
  result.from_domain = *from;

  // RFC 7489 section 6.6.3: the From: domain's record, else the
  // organizational domain's (whose sp= then applies).
  DmarcRecord record;
  std::string error;
  bool at_org = false;
  DnsStatus status = fetch(resolver, "_dmarc." + *from, record, error);
  if (status == DnsStatus::kNxDomain || status == DnsStatus::kNoData) {
    std::string org = psl.organizational_domain(*from);
    if (org != *from) {
      status = fetch(resolver, "_dmarc." + org, record, error);
      at_org = true;
    }
  }
  switch (status) {
    case DnsStatus::kFound: break;
    case DnsStatus::kTemporary:
      result.verdict = Verdict::kTemperror;
      result.reason = error.empty() ? "DNS failure" : error;
      return result;
    case DnsStatus::kNxDomain:
    case DnsStatus::kNoData:
      result.reason = "no DMARC record";
      return result;  // none
  }
  if (record.p.empty()) {
    result.verdict = Verdict::kPermerror;
    result.reason = "invalid DMARC record";
    return result;
  }
  result.policy = (at_org && !record.sp.empty()) ? record.sp : record.p;
  result.verdict = evaluate_dmarc(*from, record, spf, dkim, psl);
  return result;
}

}  // namespace holdd::auth
