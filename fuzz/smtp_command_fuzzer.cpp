// The command side of a session without the I/O: bytes arrive in arbitrary
// pieces into a LineReader (which must never buffer more than a line plus one
// read, and must cut lines only at CRLF), and every complete line goes through
// parse_command, as Session::converse does.
// Properties: lines never hold CR or LF; an overlong line is reported, never
// returned; a refusal's wire form is well-formed reply lines (a client's bytes
// cannot inject a reply line or a bare CR/LF); a parsed MAIL/RCPT path
// re-parses to the same address.
// Input: 8 bytes of split seed, then the wire bytes.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/net/line_reader.h"
#include "holdd/route/address.h"
#include "holdd/smtp/command.h"

using namespace holdd;
using namespace holdd::smtp;
using namespace holdd::fuzz;

namespace {

void check_reply(const Reply& reply, std::string_view line) {
  const std::string wire = reply.to_wire();
  FUZZ_CHECK(reply.code >= 200 && reply.code <= 599, line);
  FUZZ_CHECK(crlf_only(wire) && wire.ends_with("\r\n"), wire);
  // Every line: "NNN-" or "NNN " with the same code; only the last has ' '.
  size_t pos = 0;
  const std::string code = std::to_string(reply.code);
  while (pos < wire.size()) {
    size_t end = wire.find("\r\n", pos);
    std::string_view l(wire.data() + pos, end - pos);
    FUZZ_CHECK(l.size() >= 4 && l.substr(0, 3) == code, wire);
    FUZZ_CHECK((l[3] == ' ') == (end + 2 == wire.size()), wire);
    FUZZ_CHECK(l[3] == ' ' || l[3] == '-', wire);
    pos = end + 2;
  }
}

void check_command(std::string_view line) {
  const Command cmd = parse_command(line);
  if (cmd.error) {
    check_reply(*cmd.error, line);
    FUZZ_CHECK(cmd.error->is_error(), line);
    return;
  }
  if ((cmd.verb == Verb::kMail || cmd.verb == Verb::kRcpt) && cmd.path) {
    const Address& a = *cmd.path;
    FUZZ_CHECK(!a.local.empty() && !a.domain.empty(), line);
    FUZZ_CHECK(a.to_string().size() <= 254, line);
    PathParse again = parse_path("<" + a.to_string() + ">", false, /*utf8=*/true);
    FUZZ_CHECK(again.ok() && again.address, line);
    FUZZ_CHECK(again.address->local == a.local && again.address->domain == a.domain, line);
  }
  if (cmd.verb == Verb::kRcpt) FUZZ_CHECK(cmd.path.has_value(), line);  // no null recipient
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const std::string_view seed = in.take(8);
  const std::string_view wire = in.rest();

  // The whole input as one command line too (the parser must cope with any bytes
  // it may be handed, even though the LineReader would have refused some).
  {
    std::string_view line = wire.substr(0, std::min(wire.size(), kMaxCommandLine));
    if (line.find_first_of("\r\n") == std::string_view::npos) check_command(line);
  }

  LineReader reader(kMaxCommandLine);
  size_t offset = 0;
  for (size_t n : split_points(seed, wire.size(), 64)) {
    reader.append(wire.substr(offset, n));
    offset += n;
    while (auto line = reader.next_line()) {
      FUZZ_CHECK(line->text.size() <= kMaxCommandLine - 2, line->text);
      if (line->too_long) {
        FUZZ_CHECK(line->text.empty(), line->text);
        continue;
      }
      if (line->bare_newline) {
        FUZZ_CHECK(line->text.find_first_of("\r\n") != std::string::npos, line->text);
        continue;
      }
      FUZZ_CHECK(line->text.find_first_of("\r\n") == std::string::npos, line->text);
      check_command(line->text);
    }
    // Bounded: a line (or the CR kept from an overlong one) plus this read.
    FUZZ_CHECK(reader.buffered_size() <= kMaxCommandLine + n, wire);
  }
  return 0;
}
