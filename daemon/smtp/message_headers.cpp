#include "holdd/smtp/message_headers.h"

#include "holdd/base/ascii.h"
#include "holdd/base/printable.h"

#include <algorithm>
#include <cctype>

namespace holdd::smtp {
namespace {

// RFC 5322 3.6.8: ftext is printable ASCII except ':'.
bool is_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return c >= 33 && c <= 126 && c != ':';
  });
}

// Text that goes into a header we write: printable ASCII only (UTF-8 is kept
// for SMTPUTF8 names), never a line break, never a parenthesis that could
// close our comment early.
std::string sanitize(std::string_view s, size_t max = 255) {
  std::string out;
  s = s.substr(0, max);
  for (size_t i = 0; i < s.size();) {
    const unsigned char u = static_cast<unsigned char>(s[i]);
    // Well-formed UTF-8 (an IDN HELO) stays; any other 8-bit byte (a Latin-1
    // HELO) is not written into a header that every later hop parses.
    const size_t n = utf8_sequence_length(s, i);
    if (n > 1) {
      out.append(s, i, n);
      i += n;
      continue;
    }
    out += (n == 0 || u < 32 || u == 127 || u == '(' || u == ')' || u == '\\') ? '?' : s[i];
    ++i;
  }
  return out;
}

}  // namespace

HeaderSummary scan_headers(std::string_view content) {
  HeaderSummary summary;
  bool in_field = false;
  while (!content.empty()) {
    const size_t eol = content.find("\r\n");
    std::string_view line = content.substr(0, eol);
    content = eol == std::string_view::npos ? std::string_view{} : content.substr(eol + 2);
    if (line.empty()) break;  // end of the header section
    if (line.front() == ' ' || line.front() == '\t') {
      if (!in_field) break;  // a continuation with nothing to continue: body
      continue;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) break;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!is_field_name(name)) break;
    in_field = true;
    if (iequals(name, "Received")) {
      ++summary.received;
    } else if (iequals(name, "Message-ID")) {
      summary.has_message_id = true;
    }
  }
  return summary;
}

std::string received_header(const ReceivedInfo& info) {
  const bool v6 = info.client_ip.find(':') != std::string::npos;
  std::string h = "Received: from ";
  h += sanitize(info.helo);
  h += " (";
  h += info.client_name.empty() ? std::string("unknown") : sanitize(info.client_name);
  h += v6 ? " [IPv6:" : " [";
  h += info.client_ip;
  h += "])\r\n";
  if (info.tls) {
    h += "\t(using " + sanitize(info.tls->version) + " with cipher " + sanitize(info.tls->cipher) +
         ")\r\n";
  }
  h += "\tby ";
  h += info.hostname;
  h += " (holdd) with ";
  h += info.esmtp ? (info.tls ? "ESMTPS" : "ESMTP") : (info.tls ? "SMTPS" : "SMTP");
  h += " id ";
  h += info.queue_id;
  if (info.single_rcpt) {
    h += "\r\n\tfor <";
    h += sanitize(*info.single_rcpt, 512);
    h += ">; ";
  } else {
    h += ";\r\n\t";
  }
  h += format_rfc5322(info.when);
  h += "\r\n";
  return h;
}

std::string message_id_header(std::string_view queue_id, SysTime when, std::string_view hostname) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch());
  std::string h = "Message-ID: <";
  h += queue_id;
  h += '.';
  h += std::to_string(secs.count());
  h += '@';
  h += hostname;
  h += ">\r\n";
  return h;
}

}  // namespace holdd::smtp
