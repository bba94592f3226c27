// The header code every stored message goes through: the header section parser
// (base/header_section.h) under scan_headers (loop detection, Message-ID) and the
// removal of forged Authentication-Results (RFC 8601 5); and the headers holdd
// writes (Received:, A-R) from values a client controls.
// Properties: the fields tile the header section from the first byte, and
// scan_headers counts the same fields; removal only shortens the header section
// and leaves the body byte for byte; it is idempotent; without_own_results
// agrees with remove_own_results; no A-R for our authserv-id remains; the headers
// we write are CRLF lines, folded with a tab, whatever the HELO, the names or
// reasons hold.
// Input: 1 byte selector, authserv-id, NUL, header strings (NUL-separated), NUL, message.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/auth/auth_results.h"
#include "holdd/base/ascii.h"
#include "holdd/base/header_section.h"
#include "holdd/smtp/message_headers.h"

using namespace holdd;
using namespace holdd::fuzz;

namespace {

// Well-formed header field(s) we wrote: CRLF lines, each continuation begins with
// a tab, the first line is "Name: ...".
void check_written_header(std::string_view h, std::string_view name) {
  FUZZ_CHECK(h.starts_with(name), h);
  FUZZ_CHECK(crlf_only(h) && h.ends_with("\r\n"), h);
  size_t pos = 0;
  bool first = true;
  while (pos < h.size()) {
    size_t end = h.find("\r\n", pos);
    std::string_view line = h.substr(pos, end - pos);
    FUZZ_CHECK(!line.empty(), h);
    if (!first) FUZZ_CHECK(line.front() == '\t' || line.front() == ' ', h);
    for (unsigned char c : line) FUZZ_CHECK(c >= 32 || c == '\t', h);
    first = false;
    pos = end + 2;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t sel = in.take_byte();
  const std::string authserv_id(in.take_until('\0'));
  std::string s[6];
  for (std::string& x : s) x = std::string(in.take_until('\0'));
  const std::string_view message = in.rest();

  // parse_header_section and scan_headers: any bytes.
  const HeaderSection section = parse_header_section(message);
  size_t pos = 0;
  uint32_t received = 0;
  for (const HeaderField& f : section.fields) {
    FUZZ_CHECK(f.begin == pos && f.end > f.begin && is_field_name(f.name), message);
    if (iequals(f.name, "Received")) ++received;
    pos = f.end;
  }
  FUZZ_CHECK(pos <= section.body && section.body <= message.size(), message);
  smtp::HeaderSummary summary = smtp::scan_headers(message);
  FUZZ_CHECK(summary.received == received, message);

  // remove_own_results.
  if (!authserv_id.empty()) {
    std::string m(message);
    const size_t removed = auth::remove_own_results(m, authserv_id);
    if (removed == 0) {
      FUZZ_CHECK(m == message, message);
    } else {
      FUZZ_CHECK(m.size() < message.size(), message);
    }
    FUZZ_CHECK(auth::without_own_results(message, authserv_id) == m, message);
    // The body (after the header section) is untouched.
    const std::string_view body = message.substr(section.body);
    FUZZ_CHECK(std::string_view(m).ends_with(body), message);
    std::string again = m;
    FUZZ_CHECK(auth::remove_own_results(again, authserv_id) == 0, m);
    FUZZ_CHECK(again == m, m);
  }

  // Received: from client-controlled HELO (and names).
  smtp::ReceivedInfo info;
  info.helo = s[0];
  info.esmtp = sel & 1;
  info.client_name = s[1];
  info.client_ip = (sel & 2) ? "192.0.2.1" : "2001:db8::1";
  info.hostname = "mx.example.com";
  info.queue_id = "0123456789AB";
  if (sel & 4) info.single_rcpt = s[2];
  if (sel & 8) info.tls = TlsInfo{s[3], s[4]};
  check_written_header(smtp::received_header(info), "Received: ");

  // Authentication-Results: from client-controlled identities and DNS-controlled
  // domains, selectors and reasons.
  auth::AuthResults r;
  const auto verdict = static_cast<auth::Verdict>((sel >> 4) % 7);
  if (sel & 0x10) {
    r.spf = auth::SpfResult{};
    r.spf->verdict = verdict;
    r.spf->identity = s[0];
    r.spf->helo_identity = sel & 0x20;
    r.spf->domain = s[1];
    r.spf->reason = s[2];
  }
  if (sel & 0x40) {
    r.dkim = auth::DkimResult{};
    r.dkim->verdict = verdict;
    r.dkim->reason = s[5];
    auth::DkimSignatureResult sig;
    sig.verdict = verdict;
    sig.domain = s[3];
    sig.selector = s[4];
    sig.b_prefix = s[5].substr(0, 8);
    sig.reason = s[2];
    r.dkim->signatures.push_back(sig);
  }
  if (sel & 0x80) {
    r.dmarc = auth::DmarcResult{verdict, s[1], s[4], s[5]};
  }
  const std::string id = authserv_id.empty() ? std::string("mx.example.com") : authserv_id;
  const std::string ar = auth::format_authentication_results(id, r);
  check_written_header(ar, "Authentication-Results: ");
  // A header we wrote is recognised as ours (so a forged copy of it is removed).
  std::string with_ar = ar + "Subject: x\r\n\r\nbody\r\n";
  if (!id.empty() && id.find_first_of(" \t\r\n;()\"\\") == std::string::npos) {
    bool printable = true;
    for (unsigned char c : id) printable = printable && c > 32 && c < 127;
    if (printable) {
      FUZZ_CHECK(auth::remove_own_results(with_ar, id) == 1, ar);
      FUZZ_CHECK(with_ar == "Subject: x\r\n\r\nbody\r\n", with_ar);
    }
  }
  return 0;
}
