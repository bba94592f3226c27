// DataReader (DATA content, SPEC "SMTP intake") against a reference model:
//  - only <CR><LF>.<CR><LF> ends DATA (the first line counts as after a CRLF),
//    and feed() stops right after it;
//  - the stored body is the content with dot-stuffing undone on lines begun by a
//    CRLF and every bare CR / bare LF made a CRLF: CRLF lines only;
//  - feeding the same bytes in arbitrary pieces gives the same result as one piece.
// Input: 1 byte max_size selector, 8 bytes of split seed, then the wire bytes.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/smtp/data_reader.h"

using holdd::smtp::DataReader;
using namespace holdd::fuzz;

namespace {

// The content before the end marker, decoded the slow, obvious way.
std::string reference_body(std::string_view content) {
  std::string out;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t crlf = content.find("\r\n", pos);
    std::string_view line = content.substr(pos, crlf == std::string_view::npos ? std::string_view::npos : crlf - pos);
    if (!line.empty() && line.front() == '.') line.remove_prefix(1);  // dot-stuffing
    for (char c : line) {
      if (c == '\r' || c == '\n') out += "\r\n";  // bare CR or LF (a CRLF was split off above)
      else out += c;
    }
    if (crlf == std::string_view::npos) break;
    out += "\r\n";
    pos = crlf + 2;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t size_sel = in.take_byte();
  const uint64_t max_size = (size_sel & 0x80) ? (size_sel & 0x7f) : 1u << 20;
  const std::string_view seed = in.take(8);
  const std::string_view wire = in.rest();

  DataReader whole(max_size);
  const size_t used = whole.feed(wire);

  // Pieces: the same decoding, and the same stopping point.
  DataReader pieces(max_size);
  size_t used_pieces = 0;
  size_t offset = 0;
  for (size_t n : split_points(seed, wire.size())) {
    if (pieces.ended()) break;
    size_t u = pieces.feed(wire.substr(offset, n));
    FUZZ_CHECK(u <= n, wire);
    if (u < n) FUZZ_CHECK(pieces.ended(), wire);  // only the end marker stops it early
    used_pieces += u;
    offset += n;
  }
  FUZZ_CHECK(pieces.ended() == whole.ended(), wire);
  FUZZ_CHECK(used_pieces == used, wire);
  FUZZ_CHECK(pieces.body() == whole.body(), wire);
  FUZZ_CHECK(pieces.size() == whole.size(), wire);
  FUZZ_CHECK(pieces.eight_bit() == whole.eight_bit(), wire);

  // Where DATA ends: the first CRLF.CRLF, counting the start as after a CRLF.
  const std::string prefixed = "\r\n" + std::string(wire);
  const size_t marker = prefixed.find("\r\n.\r\n");
  if (marker == std::string::npos) {
    FUZZ_CHECK(!whole.ended(), wire);
    FUZZ_CHECK(used == wire.size(), wire);
  } else {
    FUZZ_CHECK(whole.ended(), wire);
    FUZZ_CHECK(used == marker + 3, wire);  // marker + 5 in prefixed coordinates
    const std::string expected = reference_body(wire.substr(0, marker));
    FUZZ_CHECK(whole.size() == expected.size(), wire);
    FUZZ_CHECK(whole.body() == expected.substr(0, static_cast<size_t>(max_size)), wire);
    if (!whole.too_big()) {
      FUZZ_CHECK(crlf_only(whole.body()), whole.body());
      FUZZ_CHECK(whole.body().empty() || whole.body().ends_with("\r\n"), whole.body());
    }
  }
  FUZZ_CHECK(whole.body().size() <= max_size, wire);
  FUZZ_CHECK(whole.too_big() == (whole.size() > max_size), wire);
  return 0;
}
