// BdatReader (RFC 3030 chunks): octets are taken as counted, bare CR / bare LF
// become CRLF also across chunk boundaries, finish() ends the content with CRLF.
// Checked against a reference model and against one-piece feeding.
// Input: 1 byte max_size selector, 8 bytes of split seed, then the chunk octets.
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/smtp/bdat_reader.h"

using holdd::smtp::BdatReader;
using namespace holdd::fuzz;

namespace {

std::string reference_body(std::string_view octets) {
  std::string out;
  for (size_t i = 0; i < octets.size(); ++i) {
    char c = octets[i];
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < octets.size() && octets[i + 1] == '\n') ++i;
    } else if (c == '\n') {
      out += "\r\n";
    } else {
      out += c;
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint8_t size_sel = in.take_byte();
  const uint64_t max_size = (size_sel & 0x80) ? (size_sel & 0x7f) : 1u << 20;
  const std::string_view seed = in.take(8);
  const std::string_view octets = in.rest();

  BdatReader whole(max_size);
  whole.feed(octets);
  whole.finish();

  BdatReader pieces(max_size);
  size_t offset = 0;
  for (size_t n : split_points(seed, octets.size(), 7)) {
    pieces.feed(octets.substr(offset, n));
    offset += n;
  }
  pieces.finish();

  FUZZ_CHECK(pieces.body() == whole.body(), octets);
  FUZZ_CHECK(pieces.size() == whole.size(), octets);
  FUZZ_CHECK(pieces.eight_bit() == whole.eight_bit(), octets);

  const std::string expected = reference_body(octets);
  FUZZ_CHECK(whole.size() == expected.size(), octets);
  FUZZ_CHECK(whole.body() == expected.substr(0, static_cast<size_t>(max_size)), octets);
  if (!whole.too_big()) FUZZ_CHECK(crlf_only(whole.body()), whole.body());
  return 0;
}
