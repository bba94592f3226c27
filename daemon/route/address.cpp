#include "holdd/route/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace holdd {
namespace {

// RFC 5321 4.5.3.1: limits on the parts of a path.
constexpr size_t kMaxPath = 256;  // "<" ... ">" inclusive (4.5.3.1.3)
constexpr size_t kMaxLocalPart = 64;
constexpr size_t kMaxDomain = 255;
constexpr size_t kMaxLabel = 63;

bool is_ascii_alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// atext (RFC 5322 3.2.3); SMTPUTF8 adds UTF8-non-ascii (RFC 6531 3.3).
bool is_atext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  return is_ascii_alnum(c) || (c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr);
}

// qtextSMTP (RFC 5321 4.1.2): printable ASCII except '"' and '\'.
bool is_qtext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

// Well-formed UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) { ++i; continue; }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) { n = 2; lo = 0xA0; }
    else if (c == 0xED) { n = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) n = 2;
    else if (c == 0xF0) { n = 3; lo = 0x90; }
    else if (c == 0xF4) { n = 3; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto cc = static_cast<unsigned char>(s[i + k]);
      if (cc < (k == 1 ? lo : 0x80) || cc > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

bool is_dot_string(std::string_view s, bool utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char ch : s) {
    if (ch == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(ch), utf8)) {
      return false;
    }
    prev = ch;
  }
  return true;
}

std::string describe(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 33 && u <= 126) return std::string("'") + c + "'";
  static const char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

// A recursive-descent reader over the RFC 5321 4.1.2 grammar. Each parse_*
// consumes what it recognised, or sets error_ and returns false.
class PathReader {
 public:
  PathReader(std::string_view text, bool utf8) : s_(text), utf8_(utf8) {}

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  size_t pos() const { return pos_; }
  void advance() { ++pos_; }
  const std::string& error() const { return error_; }
  bool fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  // An unexpected byte at pos_; non-ASCII gets its own reason (553 5.6.7 territory).
  bool fail_unexpected(const char* where) {
    if (static_cast<unsigned char>(peek()) >= 0x80 && !utf8_) {
      return fail("non-ASCII address without SMTPUTF8");
    }
    return fail("unexpected " + describe(peek()) + " " + where);
  }

  // Mailbox = Local-part "@" ( Domain / address-literal )
  bool parse_mailbox(Address& out) {
    size_t start = pos_;
    if (!parse_local_part()) return false;
    out.local.assign(s_.substr(start, pos_ - start));
    if (out.local.size() > kMaxLocalPart) return fail("local part longer than 64 octets");
    if (at_end() || peek() == '>') return fail("missing '@domain'");
    if (peek() != '@') return fail_unexpected("in local part");
    advance();
    start = pos_;
    if (peek() == '[') {
      if (!parse_address_literal()) return false;
    } else if (!parse_domain()) {
      return false;
    }
    out.domain.assign(s_.substr(start, pos_ - start));
    return true;
  }

  // A-d-l = At-domain *( "," At-domain ) ":"   (RFC 5321 4.1.2; ignored, Appendix C)
  bool parse_source_route() {
    for (;;) {
      if (peek() != '@') return fail("malformed source route");
      advance();
      if (!parse_domain()) return false;
      if (peek() == ',') { advance(); continue; }
      if (peek() == ':') { advance(); return true; }
      return fail("malformed source route");
    }
  }

 private:
  // Local-part = Dot-string / Quoted-string
  bool parse_local_part() {
    if (peek() == '"') return parse_quoted_string();
    size_t start = pos_;
    bool want_atom = true;
    while (!at_end()) {
      auto c = static_cast<unsigned char>(peek());
      if (c == '.') {
        if (want_atom) return fail(pos_ == start ? "local part starts with '.'" : "'..' in local part");
        want_atom = true;
      } else if (is_atext(c, utf8_)) {
        want_atom = false;
      } else {
        break;
      }
      advance();
    }
    if (pos_ == start) {
      if (at_end() || peek() == '@' || peek() == '>') return fail("empty local part");
      return fail_unexpected("in local part");
    }
    if (want_atom) return fail("local part ends with '.'");
    return true;
  }

  // Quoted-string = DQUOTE *QcontentSMTP DQUOTE
  bool parse_quoted_string() {
    advance();  // opening quote
    while (!at_end()) {
      auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        advance();
        return true;
      }
      if (c == '\\') {  // quoted-pairSMTP = "\" %d32-126
        advance();
        if (at_end()) break;
        auto q = static_cast<unsigned char>(peek());
        if (!((q >= 32 && q <= 126) || (q >= 0x80 && utf8_))) return fail_unexpected("in quoted local part");
      } else if (!is_qtext(c, utf8_)) {
        return fail_unexpected("in quoted local part");
      }
      advance();
    }
    return fail("unterminated quoted local part");
  }

  // Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
  // With SMTPUTF8 a label may be a U-label (RFC 6531 3.3), so non-ASCII passes.
  bool parse_domain() {
    size_t start = pos_;
    for (;;) {
      size_t label = pos_;
      while (!at_end()) {
        auto c = static_cast<unsigned char>(peek());
        if (!(is_ascii_alnum(c) || c == '-' || (c >= 0x80 && utf8_))) break;
        advance();
      }
      if (pos_ == label) {
        if (at_end() || peek() == '>' || peek() == '.') return fail("empty domain label");
        return fail_unexpected("in domain");
      }
      if (s_[label] == '-' || s_[pos_ - 1] == '-') return fail("domain label starts or ends with '-'");
      if (pos_ - label > kMaxLabel) return fail("domain label longer than 63 octets");
      if (peek() != '.') break;
      advance();
    }
    if (pos_ - start > kMaxDomain) return fail("domain longer than 255 octets");
    return true;
  }

  // address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General-address-literal ) "]"
  bool parse_address_literal() {
    size_t open = pos_;
    size_t close = s_.find(']', open);
    if (close == std::string_view::npos) return fail("unterminated address literal");
    std::string inner(s_.substr(open + 1, close - open - 1));
    pos_ = close + 1;
    // inet_pton stops at a NUL: "[192.0.2.1\0junk]" must not pass as an IPv4 literal.
    if (inner.find('\0') != std::string::npos) return fail("invalid address literal");
    unsigned char buf[16];
    if (inet_pton(AF_INET, inner.c_str(), buf) == 1) return true;
    if (inner.size() > 5 && strncasecmp(inner.c_str(), "IPv6:", 5) == 0) {
      if (inet_pton(AF_INET6, inner.c_str() + 5, buf) == 1) return true;
      return fail("invalid IPv6 address literal");
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent
    size_t colon = inner.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == inner.size()) {
      return fail("invalid address literal");
    }
    for (size_t i = 0; i < inner.size(); ++i) {
      auto c = static_cast<unsigned char>(inner[i]);
      bool ok = i < colon ? (is_ascii_alnum(c) || c == '-')
                          : (c >= 33 && c <= 126 && c != '[' && c != '\\' && c != ']');
      if (!ok) return fail("invalid address literal");
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  bool utf8_;
  std::string error_;
};

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

bool has_non_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  }
  return false;
}

}  // namespace

std::string Address::mailbox_key(LocalPartCase local_part_case) const {
  std::string key;
  // RFC 5321 4.1.2: "anna" and anna are the same local part. Quotes that are not
  // needed are dropped so that a quoted spelling finds the listed mailbox.
  std::string_view l = local;
  std::string unquoted;
  if (l.size() >= 2 && l.front() == '"' && l.back() == '"') {
    for (size_t i = 1; i + 1 < l.size(); ++i) {
      if (l[i] == '\\' && i + 2 < l.size()) ++i;
      unquoted += l[i];
    }
    if (is_dot_string(unquoted, /*utf8=*/true)) l = unquoted;
  }
  key.reserve(l.size() + 1 + domain.size());
  if (local_part_case == LocalPartCase::kInsensitive) {
    for (char c : l) key += to_lower_ascii(c);
  } else {
    key.append(l);
  }
  key += '@';
  for (char c : domain) key += to_lower_ascii(c);
  return key;
}

std::string fold_mailbox_key(std::string_view mailbox_key) {
  // The domain of a key is lower-case already, so folding the whole key folds
  // exactly its local part.
  return to_lower_ascii(mailbox_key);
}

bool Address::asks_for_routing() const {
  // '%' and '!' are the old percent-hack and UUCP routes; '@' can only appear
  // quoted and is a source route in disguise. Any of them asks us to relay.
  return local.find_first_of("%!@") != std::string::npos;
}

PathParse parse_path(std::string_view text, bool allow_null, bool utf8) {
  PathParse result;
  size_t lead = 0;
  while (lead < text.size() && is_space(text[lead])) ++lead;
  text.remove_prefix(lead);

  if (text.empty()) {
    result.error = "missing address";
    return result;
  }
  if (text.front() != '<') {
    result.error = "missing '<' before the address";
    return result;
  }
  PathReader reader(text, utf8);
  reader.advance();  // '<'

  if (reader.peek() == '>') {
    if (!allow_null) {
      result.error = "null path <> not allowed here";
      return result;
    }
    reader.advance();
  } else {
    Address address;
    if (reader.peek() == '@') {
      if (!reader.parse_source_route()) {
        result.error = reader.error();
        return result;
      }
      address.had_source_route = true;
    }
    if (!reader.parse_mailbox(address)) {
      result.error = reader.error();
      return result;
    }
    if (reader.at_end()) {
      result.error = "missing '>' after the address";
      return result;
    }
    if (reader.peek() != '>') {
      reader.fail_unexpected("after the address");
      result.error = reader.error();
      return result;
    }
    reader.advance();
    result.address = std::move(address);
  }

  size_t path_len = reader.pos();
  std::string_view path = text.substr(0, path_len);
  if (path_len > kMaxPath) {
    result.error = "path longer than 256 octets";
    result.address.reset();
    return result;
  }
  if (has_non_ascii(path)) {
    if (!utf8) {
      result.error = "non-ASCII address without SMTPUTF8";
      result.address.reset();
      return result;
    }
    if (!is_valid_utf8(path)) {
      result.error = "address is not valid UTF-8";
      result.address.reset();
      return result;
    }
  }
  std::string_view rest = trim(text.substr(path_len));
  if (!rest.empty() && (rest.front() == '>' || rest.front() == '<')) {
    result.error = "unbalanced '<' or '>'";
    result.address.reset();
    return result;
  }
  result.rest.assign(rest);
  return result;
}

std::optional<Address> parse_address(std::string_view text) {
  text = trim(text);
  if (text.empty() || text.front() == '<' || text.front() == '@') return std::nullopt;
  if (has_non_ascii(text) && !is_valid_utf8(text)) return std::nullopt;
  PathReader reader(text, /*utf8=*/true);
  Address address;
  if (!reader.parse_mailbox(address) || !reader.at_end()) return std::nullopt;
  if (text.size() > kMaxPath - 2) return std::nullopt;  // must fit in a path
  return address;
}

}  // namespace holdd
