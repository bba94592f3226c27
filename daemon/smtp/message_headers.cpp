#include "holdd/smtp/message_headers.h"

#include "holdd/base/ascii.h"
#include "holdd/base/header_section.h"
#include "holdd/base/printable.h"

namespace holdd::smtp {
namespace {

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
  for (const HeaderField& field : parse_header_section(content).fields) {
    if (iequals(field.name, "Received")) {
      ++summary.received;
    } else if (iequals(field.name, "Message-ID")) {
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
