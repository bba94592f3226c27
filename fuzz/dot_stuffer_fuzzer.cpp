// The relay's DATA encoding against the intake's decoding: stored content (CRLF
// lines, as BdatReader/DataReader leave it) dot-stuffed by DotStuffer and read
// back by DataReader is the same content, ends exactly at the final ".\r\n",
// and the chunked next() output equals stuff(). So no stored message can end a
// relayed DATA early or be changed on its way to the upstream.
// Input: 1 byte chunk size, then content (normalized to CRLF lines first).
#include <string>
#include <string_view>

#include "fuzz_input.h"
#include "holdd/relay/dot_stuffer.h"
#include "holdd/smtp/bdat_reader.h"
#include "holdd/smtp/data_reader.h"

using namespace holdd;
using namespace holdd::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const size_t chunk = 1 + in.take_byte();
  smtp::BdatReader normalize(1u << 20);
  normalize.feed(in.rest());
  normalize.finish();
  const std::string& content = normalize.body();

  const std::string wire = DotStuffer::stuff(content);
  FUZZ_CHECK(wire.ends_with(".\r\n"), wire);

  std::string chunked;
  DotStuffer stuffer(content);
  size_t calls = 0;
  while (stuffer.next(chunked, chunk)) {
    FUZZ_CHECK(++calls <= wire.size() + 2, wire);
  }
  FUZZ_CHECK(chunked == wire, chunked);

  smtp::DataReader reader(1u << 21);
  const size_t used = reader.feed(wire);
  FUZZ_CHECK(reader.ended(), wire);
  FUZZ_CHECK(used == wire.size(), wire);
  FUZZ_CHECK(reader.body() == content, wire);
  return 0;
}
