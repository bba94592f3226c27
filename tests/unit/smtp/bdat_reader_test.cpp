#include "holdd/smtp/bdat_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace holdd::smtp {
namespace {

TEST_CASE("BdatReader: octets are content as counted, bare CR/LF become CRLF") {
  struct Case {
    std::vector<std::string> chunks;
    std::string body;
  };
  const Case cases[] = {
      {{"a\r\n.\r\n"}, "a\r\n.\r\n"},        // no dot handling, no end marker
      {{"..x\r\n"}, "..x\r\n"},              // no unstuffing
      {{"a\nb\rc\r\n"}, "a\r\nb\r\nc\r\n"},
      {{"a\r", "\nb\r\n"}, "a\r\nb\r\n"},    // CRLF split across chunks
      {{"a\r", "b\r\n"}, "a\r\nb\r\n"},      // bare CR at the end of a chunk
      {{"a\r"}, "a\r\n"},                    // bare CR at the very end
      {{"no newline"}, "no newline\r\n"},    // stored content ends with CRLF
      {{""}, ""},
      {{"a\r\n", "", "b\r\n"}, "a\r\nb\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    BdatReader reader(1024);
    for (const std::string& chunk : c.chunks) reader.feed(chunk);
    reader.finish();
    CHECK(reader.body() == c.body);
    CHECK(reader.size() == c.body.size());
  }
}

TEST_CASE("BdatReader: every split of the input gives the same content") {
  const std::string wire = "Subject: x\r\n\r\nline\rtwo\nthree\r\n.\r\n\r\r\n";
  BdatReader whole(1024);
  whole.feed(wire);
  whole.finish();
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    CAPTURE(cut);
    BdatReader split(1024);
    split.feed(std::string_view(wire).substr(0, cut));
    split.feed(std::string_view(wire).substr(cut));
    split.finish();
    CHECK(split.body() == whole.body());
  }
}

TEST_CASE("BdatReader: size limit and 8-bit") {
  BdatReader reader(8);
  reader.feed("0123456789\r\n");
  reader.finish();
  CHECK(reader.too_big());
  CHECK(reader.body().size() == 8);
  CHECK(!reader.eight_bit());
  BdatReader eight(100);
  eight.feed("\xFF\r\n");
  CHECK(eight.eight_bit());
}

}  // namespace
}  // namespace holdd::smtp
