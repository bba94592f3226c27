#include "holdd/auth/auth_results.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "holdd/base/ascii.h"
#include "holdd/base/header_section.h"

namespace holdd::auth {

namespace {

// RFC 8601 section 2.2: a property value is a token, an address-like pvalue, or
// a quoted-string. Characters of atext plus "." and "@" stay as they are;
// anything else is quoted. Controls (CR, LF, ...) are dropped either way: the
// values come from the client (MAIL FROM, HELO, d= of a signature).
bool is_plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("!#$%&'*+-/=?^_`{|}~.@", c) != nullptr;
}

std::string value(std::string_view v) {
  bool plain = !v.empty();
  for (unsigned char c : v) plain = plain && c != 0 && is_plain(c);
  if (plain) return std::string(v);
  std::string q = "\"";
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f) continue;
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(static_cast<char>(c));
  }
  q.push_back('"');
  return q;
}

// " (reason)" for errors only: a comment, with parentheses and controls removed.
std::string comment(Verdict v, std::string_view reason) {
  if (reason.empty() || (v != Verdict::kTemperror && v != Verdict::kPermerror)) return "";
  std::string c = " (";
  for (unsigned char ch : reason) {
    if (ch < 0x20 || ch == 0x7f || ch == '(' || ch == ')' || ch == '\\') continue;
    c.push_back(static_cast<char>(ch));
  }
  c.push_back(')');
  return c;
}

std::string spf_line(const SpfResult& r) {
  std::string s = "spf=" + std::string(to_string(r.verdict)) + comment(r.verdict, r.reason);
  if (!r.identity.empty()) {
    s += r.helo_identity ? " smtp.helo=" : " smtp.mailfrom=";
    s += value(r.identity);
  }
  return s;
}

std::string dkim_line(const DkimSignatureResult& r) {
  std::string s = "dkim=" + std::string(to_string(r.verdict)) + comment(r.verdict, r.reason);
  if (!r.domain.empty()) s += " header.d=" + value(r.domain);
  if (!r.selector.empty()) s += " header.s=" + value(r.selector);
  if (!r.b_prefix.empty()) s += " header.b=" + value(r.b_prefix);
  return s;
}

std::string dmarc_line(const DmarcResult& r) {
  std::string s = "dmarc=" + std::string(to_string(r.verdict)) + comment(r.verdict, r.reason);
  if (!r.from_domain.empty()) s += " header.from=" + value(r.from_domain);
  if (!r.policy.empty()) s += " policy.dmarc=" + value(r.policy);
  return s;
}

// Skips CFWS (RFC 5322 section 3.2.2): whitespace, line breaks, nested comments.
std::size_t skip_cfws(std::string_view v, std::size_t i) {
  int depth = 0;
  while (i < v.size()) {
    char c = v[i];
    if (depth > 0) {
      if (c == '\\') ++i;
      else if (c == '(') ++depth;
      else if (c == ')') --depth;
    } else if (c == '(') {
      depth = 1;
    } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      break;
    }
    ++i;
  }
  return i;
}

// The authserv-id an A-R field value starts with: a token or a quoted-string.
std::string authserv_id_of(std::string_view v) {
  std::size_t i = skip_cfws(v, 0);
  std::string id;
  if (i < v.size() && v[i] == '"') {
    for (++i; i < v.size() && v[i] != '"'; ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) ++i;
      if (v[i] != '\r' && v[i] != '\n') id.push_back(v[i]);
    }
    return id;
  }
  for (; i < v.size(); ++i) {
    char c = v[i];
    if (c == ';' || c == '(' || c == ' ' || c == '\t' || c == '\r' || c == '\n') break;
    id.push_back(c);
  }
  return id;
}

// Byte ranges [begin, end) of our own A-R fields in `message`.
std::vector<std::pair<std::size_t, std::size_t>> own_fields(std::string_view message,
                                                            std::string_view authserv_id) {
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (const HeaderField& f : parse_header_section(message).fields) {
    if (iequals(f.name, "Authentication-Results") && iequals(authserv_id_of(f.value), authserv_id)) {
      ranges.emplace_back(f.begin, f.end);
    }
  }
  return ranges;
}

}  // namespace

std::string format_authentication_results(std::string_view authserv_id,
                                          const AuthResults& results) {
  std::vector<std::string> lines;
  if (results.spf) lines.push_back(spf_line(*results.spf));
  if (results.dkim) {
    if (results.dkim->signatures.empty()) {
      DkimSignatureResult none;
      none.verdict = results.dkim->verdict;
      none.reason = results.dkim->reason;
      lines.push_back(dkim_line(none));
    }
    for (const DkimSignatureResult& sig : results.dkim->signatures) lines.push_back(dkim_line(sig));
  }
  if (results.dmarc) lines.push_back(dmarc_line(*results.dmarc));

  std::string header = "Authentication-Results: " + value(authserv_id) + ";";
  if (lines.empty()) return header + " none\r\n";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    header += "\r\n\t" + lines[i];
    if (i + 1 < lines.size()) header += ";";
  }
  return header + "\r\n";
}

std::size_t remove_own_results(std::string& message, std::string_view authserv_id) {
  auto ranges = own_fields(message, authserv_id);
  if (ranges.empty()) return 0;
  // One pass: move what is kept down over what is removed.
  std::size_t out = ranges.front().first;
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    std::size_t keep_from = ranges[i].second;
    std::size_t keep_to = i + 1 < ranges.size() ? ranges[i + 1].first : message.size();
    // out <= keep_from: a forward copy never reads what it already overwrote.
    std::copy(message.begin() + static_cast<std::ptrdiff_t>(keep_from),
              message.begin() + static_cast<std::ptrdiff_t>(keep_to),
              message.begin() + static_cast<std::ptrdiff_t>(out));
    out += keep_to - keep_from;
  }
  message.resize(out);
  return ranges.size();
}

std::string without_own_results(std::string_view message, std::string_view authserv_id) {
  std::string out;
  out.reserve(message.size());
  std::size_t pos = 0;
  for (const auto& [begin, end] : own_fields(message, authserv_id)) {
    out.append(message.substr(pos, begin - pos));
    pos = end;
  }
  out.append(message.substr(pos));
  return out;
}

}  // namespace holdd::auth
