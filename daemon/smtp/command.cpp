#include "holdd/smtp/command.h"

#include "holdd/base/ascii.h"
#include "holdd/base/printable.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace holdd::smtp {
namespace {

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal digits to uint64, saturating: a SIZE or BDAT count too large to hold
// is simply "over any limit".
uint64_t saturating_number(std::string_view digits) {
  uint64_t v = 0;
  for (char c : digits) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return UINT64_MAX;
    v = v * 10 + d;
  }
  return v;
}

bool has_non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) > 127; });
}

struct VerbName {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbName, 20> kVerbs = {{
    {"EHLO", Verb::kEhlo},       {"HELO", Verb::kHelo},
    {"MAIL", Verb::kMail},       {"RCPT", Verb::kRcpt},
    {"DATA", Verb::kData},       {"BDAT", Verb::kBdat},
    {"RSET", Verb::kRset},       {"NOOP", Verb::kNoop},
    {"QUIT", Verb::kQuit},       {"VRFY", Verb::kVrfy},
    {"HELP", Verb::kHelp},       {"STARTTLS", Verb::kStarttls},
    {"EXPN", Verb::kNotImplemented}, {"TURN", Verb::kNotImplemented},
    {"ETRN", Verb::kNotImplemented}, {"AUTH", Verb::kNotImplemented},
    {"SEND", Verb::kNotImplemented}, {"SOML", Verb::kNotImplemented},
    {"SAML", Verb::kNotImplemented}, {"ATRN", Verb::kNotImplemented},
}};

// Splits "K1=V1 K2 K3=V3" on spaces.
template <class F>
std::optional<Reply> for_each_param(std::string_view text, F&& f) {
  text = trim(text);
  while (!text.empty()) {
    size_t sp = text.find(' ');
    std::string_view item = text.substr(0, sp);
    text = sp == std::string_view::npos ? std::string_view{} : trim(text.substr(sp + 1));
    size_t eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::optional<std::string_view> value;
    if (eq != std::string_view::npos) value = item.substr(eq + 1);
    if (key.empty()) return Reply::bad_parameter("Bad parameter syntax: " + std::string(item));
    if (auto refusal = f(to_upper(key), value, item)) return refusal;
  }
  return std::nullopt;
}

std::optional<Reply> parse_mail_params(std::string_view text, MailParams& p) {
  bool seen_body = false;
  return for_each_param(text, [&](const std::string& key, std::optional<std::string_view> value,
                                  std::string_view item) -> std::optional<Reply> {
    if (key == "SIZE") {
      if (p.size || !value || !all_digits(*value)) return Reply::bad_parameter("Bad SIZE syntax");
      p.size = saturating_number(*value);
    } else if (key == "BODY") {
      if (seen_body || !value) return Reply::bad_parameter("Bad BODY syntax");
      seen_body = true;
      if (iequals(*value, "7BIT")) {
        p.body = BodyType::k7Bit;
      } else if (iequals(*value, "8BITMIME")) {
        p.body = BodyType::k8BitMime;
      } else {
        return Reply::unsupported_parameter(item);  // BINARYMIME is not offered
      }
    } else if (key == "SMTPUTF8") {
      if (value || p.smtputf8) return Reply::bad_parameter("Bad SMTPUTF8 syntax");
      p.smtputf8 = true;
    } else if (key == "RET") {
      if (!p.ret.empty() || !value) return Reply::bad_parameter("Bad RET syntax");
      std::string ret = to_upper(*value);
      if (ret != "FULL" && ret != "HDRS") return Reply::bad_parameter("Bad RET syntax");
      p.ret = std::move(ret);
    } else if (key == "ENVID") {
      // RFC 3461 4.4: xtext, at most 100 characters.
      if (!p.envid.empty() || !value || value->empty() || value->size() > 100 ||
          !is_xtext(*value)) {
        return Reply::bad_parameter("Bad ENVID syntax");
      }
      p.envid = std::string(*value);
    } else {
      return Reply::unsupported_parameter(item);
    }
    return std::nullopt;
  });
}

bool valid_notify(std::string_view upper) {
  if (upper == "NEVER") return true;
  bool success = false, failure = false, delay = false;
  while (!upper.empty()) {
    size_t comma = upper.find(',');
    std::string_view item = upper.substr(0, comma);
    upper = comma == std::string_view::npos ? std::string_view{} : upper.substr(comma + 1);
    bool* seen = item == "SUCCESS" ? &success : item == "FAILURE" ? &failure
                 : item == "DELAY" ? &delay : nullptr;
    if (seen == nullptr || *seen) return false;
    *seen = true;
    if (comma != std::string_view::npos && upper.empty()) return false;  // trailing comma
  }
  return success || failure || delay;
}

bool valid_orcpt(std::string_view v) {
  // RFC 3461 4.2: addr-type ";" xtext (RFC 6533 allows UTF-8 in utf-8 addresses).
  size_t semi = v.find(';');
  if (semi == 0 || semi == std::string_view::npos || semi + 1 == v.size() || v.size() > 500) {
    return false;
  }
  // 8-bit bytes that are not UTF-8 (a Latin-1 ORCPT) are refused here, at RCPT,
  // with a 501 the client can read: relayed as they are, they would make the
  // upstream refuse the recipient and the message would be parked.
  return is_valid_utf8(v) && std::none_of(v.begin(), v.end(), [](char c) {
           return static_cast<unsigned char>(c) < 33 || c == 127;
         });
}

std::optional<Reply> parse_rcpt_params(std::string_view text, RcptParams& p) {
  return for_each_param(text, [&](const std::string& key, std::optional<std::string_view> value,
                                  std::string_view item) -> std::optional<Reply> {
    if (key == "NOTIFY") {
      if (!p.notify.empty() || !value) return Reply::bad_parameter("Bad NOTIFY syntax");
      std::string notify = to_upper(*value);
      if (!valid_notify(notify)) return Reply::bad_parameter("Bad NOTIFY syntax");
      p.notify = std::move(notify);
    } else if (key == "ORCPT") {
      if (!p.orcpt.empty() || !value || !valid_orcpt(*value)) {
        return Reply::bad_parameter("Bad ORCPT syntax");
      }
      p.orcpt = std::string(*value);
    } else {
      return Reply::unsupported_parameter(item);
    }
    return std::nullopt;
  });
}

void parse_mail(Command& cmd) {
  std::string_view arg = cmd.argument;
  if (!istarts_with(arg, "FROM:")) {
    cmd.error = Reply::syntax("Syntax: MAIL FROM:<address>");
    return;
  }
  PathParse parsed = parse_path(arg.substr(5), /*allow_null=*/true, /*utf8=*/true);
  if (!parsed.ok()) {
    cmd.error = Reply::bad_sender(parsed.error);
    return;
  }
  cmd.path = std::move(parsed.address);
  if (auto refusal = parse_mail_params(parsed.rest, cmd.mail)) {
    cmd.error = std::move(refusal);
    return;
  }
  cmd.non_ascii_path = cmd.path && (has_non_ascii(cmd.path->local) || has_non_ascii(cmd.path->domain));
  // RFC 6531 3.4: a UTF-8 reverse-path needs SMTPUTF8 on this very command.
  if (cmd.non_ascii_path && !cmd.mail.smtputf8) cmd.error = Reply::needs_smtputf8();
}

void parse_rcpt(Command& cmd) {
  std::string_view arg = cmd.argument;
  if (!istarts_with(arg, "TO:")) {
    cmd.error = Reply::syntax("Syntax: RCPT TO:<address>");
    return;
  }
  std::string_view path_text = trim(arg.substr(3));
  // RFC 5321 4.5.1: "<Postmaster>" without a domain must be accepted; the
  // session completes the domain with our first one.
  if (istarts_with(path_text, "<postmaster>")) {
    cmd.path = Address{"postmaster", "", false};
    if (auto refusal = parse_rcpt_params(path_text.substr(12), cmd.rcpt)) cmd.error = refusal;
    return;
  }
  PathParse parsed = parse_path(path_text, /*allow_null=*/false, /*utf8=*/true);
  if (!parsed.ok() || !parsed.address) {
    cmd.error = Reply::bad_recipient(parsed.ok() ? "null recipient" : parsed.error);
    return;
  }
  cmd.path = std::move(parsed.address);
  cmd.non_ascii_path = has_non_ascii(cmd.path->local) || has_non_ascii(cmd.path->domain);
  if (auto refusal = parse_rcpt_params(parsed.rest, cmd.rcpt)) cmd.error = std::move(refusal);
}

void parse_bdat(Command& cmd) {
  std::string_view arg = cmd.argument;
  size_t sp = arg.find(' ');
  std::string_view count = arg.substr(0, sp);
  std::string_view rest = sp == std::string_view::npos ? std::string_view{} : trim(arg.substr(sp + 1));
  if (!all_digits(count) || (!rest.empty() && !iequals(rest, "LAST"))) {
    cmd.error = Reply::syntax("Syntax: BDAT count [LAST]");
    return;
  }
  cmd.chunk_size = saturating_number(count);
  cmd.last = !rest.empty();
}

}  // namespace

bool is_xtext(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return false;
      for (size_t k = i + 1; k <= i + 2; ++k) {
        const char h = s[k];
        if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'))) return false;
      }
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return false;
    }
  }
  return true;
}

Command parse_command(std::string_view line) {
  Command cmd;
  size_t sp = line.find(' ');
  std::string_view verb = line.substr(0, sp);
  cmd.argument = std::string(sp == std::string_view::npos ? std::string_view{}
                                                          : trim(line.substr(sp + 1)));
  auto it = std::find_if(kVerbs.begin(), kVerbs.end(),
                         [&](const VerbName& v) { return iequals(v.name, verb); });
  if (it == kVerbs.end()) {
    cmd.verb = Verb::kUnknown;
    cmd.error = Reply::unrecognized();
    return cmd;
  }
  cmd.verb = it->verb;
  switch (cmd.verb) {
    case Verb::kEhlo:
      if (cmd.argument.empty()) cmd.error = Reply::syntax("Syntax: EHLO hostname");
      break;
    case Verb::kHelo:
      if (cmd.argument.empty()) cmd.error = Reply::syntax("Syntax: HELO hostname");
      break;
    case Verb::kMail: parse_mail(cmd); break;
    case Verb::kRcpt: parse_rcpt(cmd); break;
    case Verb::kBdat: parse_bdat(cmd); break;
    case Verb::kData:
      if (!cmd.argument.empty()) cmd.error = Reply::syntax("Syntax: DATA");
      break;
    case Verb::kVrfy:
      if (cmd.argument.empty()) cmd.error = Reply::syntax("Syntax: VRFY address");
      break;
    case Verb::kStarttls:
      // RFC 3207 4: STARTTLS takes no parameters (501 5.5.4, as Postfix).
      if (!cmd.argument.empty()) cmd.error = Reply::bad_parameter("Syntax: STARTTLS");
      break;
    case Verb::kNotImplemented: cmd.error = Reply::not_implemented(); break;
    default: break;  // RSET, NOOP, QUIT, HELP: arguments are ignored
  }
  return cmd;
}

}  // namespace holdd::smtp
